from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from edge.transport.homeassistant import (
    AVAILABILITY_TEMPLATE,
    EVENT_TEMPLATE,
    EVENT_TYPES,
    STATE_TEMPLATE,
    STATUS_ATTRIBUTES_TEMPLATE,
    birth_topic,
    discovery_messages,
    discovery_topics,
    is_ha_birth,
)
from edge.transport.topics import Topics

TOPICS = Topics("pole-17")

# keys documented for HA's MQTT event / sensor platforms (home-assistant.io, event.mqtt and sensor.mqtt) that we use
EVENT_KEYS = {
    "availability",
    "device",
    "event_types",
    "icon",
    "name",
    "origin",
    "qos",
    "state_topic",
    "unique_id",
    "value_template",
}
SENSOR_KEYS = {
    "availability",
    "device",
    "device_class",
    "entity_category",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "origin",
    "qos",
    "state_class",
    "state_topic",
    "unique_id",
    "unit_of_measurement",
    "value_template",
}


def messages(prefix: str = "homeassistant") -> dict[str, dict[str, Any]]:
    found = discovery_messages(TOPICS, "pole-17", "0.1.0", "gunshot-cnn 3", discovery_prefix=prefix)
    assert all(retain is True for _, _, retain in found)
    return {topic: payload for topic, payload, _ in found}


def test_event_entity_config() -> None:
    config = messages()["homeassistant/event/pole-17/gunshot/config"]
    assert set(config) <= EVENT_KEYS
    assert config["state_topic"] == "polewatch/v1/pole-17/event"
    assert config["event_types"] == ["gunshot", "test"] == list(EVENT_TYPES)
    assert config["unique_id"] == "polewatch_pole_17_gunshot"
    assert config["availability"] == [
        {
            "topic": "polewatch/v1/pole-17/status",
            "value_template": AVAILABILITY_TEMPLATE,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    assert config["device"] == {
        "identifiers": ["polewatch_pole_17"],
        "name": "polewatch pole-17",
        "manufacturer": "polewatch",
        "model": "gunshot-cnn 3",
        "sw_version": "0.1.0",
    }
    assert config["origin"]["name"] == "polewatch"


def test_sensor_configs() -> None:
    found = messages()
    sensors = {topic: cfg for topic, cfg in found.items() if "/sensor/" in topic}
    assert set(sensors) == {
        "homeassistant/sensor/pole-17/status/config",
        "homeassistant/sensor/pole-17/mic_level/config",
        "homeassistant/sensor/pole-17/noise_floor/config",
        "homeassistant/sensor/pole-17/temperature/config",
    }
    for cfg in sensors.values():
        assert set(cfg) <= SENSOR_KEYS
        assert cfg["entity_category"] == "diagnostic"
        assert cfg["device"]["identifiers"] == ["polewatch_pole_17"]
    mic = sensors["homeassistant/sensor/pole-17/mic_level/config"]
    assert mic["state_topic"] == TOPICS.health and mic["unit_of_measurement"] == "dBFS"
    status = sensors["homeassistant/sensor/pole-17/status/config"]
    assert status["state_topic"] == TOPICS.status and "availability" not in status  # it must show "offline"
    unique_ids = [cfg["unique_id"] for cfg in found.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    json.dumps(list(found.values()))


def test_custom_discovery_prefix_and_removal_topics() -> None:
    assert all(topic.startswith("ha-test/") for topic in messages("ha-test"))
    assert discovery_topics(TOPICS, "pole-17") == list(messages())


@pytest.mark.parametrize("prefix", ["", "home/", "home/#", "a+b"])
def test_bad_discovery_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="discovery prefix"):
        discovery_messages(TOPICS, "pole-17", "0.1.0", "m", discovery_prefix=prefix)


def test_bad_unit_id() -> None:
    with pytest.raises(ValueError, match="unit id"):
        discovery_messages(TOPICS, "Pole 17", "0.1.0", "m")


def test_ha_birth() -> None:
    assert birth_topic() == "homeassistant/status"
    assert is_ha_birth("homeassistant/status", b"online")
    assert is_ha_birth("ha/status", b"online\n", discovery_prefix="ha")
    assert not is_ha_birth("homeassistant/status", b"offline")
    assert not is_ha_birth("polewatch/v1/pole-17/status", b"online")


# -- the templates, rendered the way HA's MQTT integration does (value, and value_json when the payload is JSON) --


def render(template: str, payload: str) -> str:
    sandbox = pytest.importorskip("jinja2.sandbox")
    env = sandbox.ImmutableSandboxedEnvironment()
    variables: dict[str, Any] = {"value": payload}
    with contextlib.suppress(ValueError):  # HA sets value_json only when the payload is JSON
        variables["value_json"] = json.loads(payload)
    return str(env.from_string(template).render(**variables)).strip()


EVENT = {
    "schema": "polewatch/event/1",
    "event_id": "0b6f3c1e-8c2a-4c57-9d2e-6c1f0a9e4b11",
    "phase": "new",
    "unit_id": "pole-17",
    "type": "gunshot",
    "onset_utc": "2025-03-01T12:00:00.123456Z",
    "time_source": "gps-pps",
    "time_uncertainty_us": 10001.5,
    "score": 0.97,
    "rounds": 1,
}


def test_event_template_gives_ha_its_event_type_and_attributes() -> None:
    rendered = json.loads(render(EVENT_TEMPLATE, json.dumps(EVENT)))
    assert rendered == {
        "event_type": "gunshot",
        "phase": "new",
        "event_id": EVENT["event_id"],
        "rounds": 1,
        "score": 0.97,
        "onset_utc": "2025-03-01T12:00:00.123456Z",
        "time_source": "gps-pps",
        "time_uncertainty_us": 10001.5,
    }
    test = json.loads(render(EVENT_TEMPLATE, json.dumps({**EVENT, "type": "test", "phase": "final"})))
    assert test["event_type"] == "test" and test["phase"] == "final"


@pytest.mark.parametrize("payload", ["not json", "[1]", json.dumps({**EVENT, "type": "review"})])
def test_event_template_ignores_anything_else(payload: str) -> None:
    assert json.loads(render(EVENT_TEMPLATE, payload)) == {}


@pytest.mark.parametrize(
    ("payload", "available"),
    [
        ('{"state": "online", "reasons": []}', "online"),
        ('{"state": "degraded", "reasons": ["no-gps"]}', "online"),
        ('{"state": "offline"}', "offline"),
        ("offline", "offline"),
        ("online", "online"),
    ],
)
def test_availability_template(payload: str, available: str) -> None:
    assert render(AVAILABILITY_TEMPLATE, payload) == available


def test_status_templates() -> None:
    status = '{"state": "degraded", "since": "2025-03-01T12:00:00.000000Z", "reasons": ["disk-low"]}'
    assert render(STATE_TEMPLATE, status) == "degraded"
    assert render(STATE_TEMPLATE, "offline") == "offline"
    attributes = json.loads(render(STATUS_ATTRIBUTES_TEMPLATE, status))
    assert attributes == {"reasons": ["disk-low"], "since": "2025-03-01T12:00:00.000000Z"}
    assert json.loads(render(STATUS_ATTRIBUTES_TEMPLATE, "offline")) == {}


def test_health_sensor_templates() -> None:
    health = json.dumps({"mic": {"rms_dbfs": -52.3, "noise_floor_dbfs": -61.0}, "temperature_c": 48.2})
    configs = messages()
    assert render(configs["homeassistant/sensor/pole-17/mic_level/config"]["value_template"], health) == "-52.3"
    assert render(configs["homeassistant/sensor/pole-17/noise_floor/config"]["value_template"], health) == "-61.0"
    assert render(configs["homeassistant/sensor/pole-17/temperature/config"]["value_template"], health) == "48.2"
