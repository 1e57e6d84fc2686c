"""Optional Home Assistant MQTT discovery: the unit shows up as a device with a gunshot ``event`` entity.

Only the configuration keys documented for HA's MQTT ``event`` and ``sensor`` platforms are used:

- ``event`` at ``{discovery}/event/{unit}/gunshot/config``: ``state_topic`` is our event topic, ``event_types``
  ``gunshot`` and ``test``; a ``value_template`` turns our event JSON into the ``{"event_type": ...}`` object HA
  wants, carrying phase, event id, rounds, score, onset time, time source and uncertainty as attributes. Both phases
  fire (``new`` first, fast; ``final`` with the round count); automations can filter on the ``phase`` attribute.
- diagnostic ``sensor`` entities for the status (``online``/``degraded``/``offline``, reasons as attributes),
  microphone level, noise floor and CPU temperature, read from our status and health topics.
- availability: our retained status topic through an availability ``value_template``, because HA has one
  ``payload_available`` and both ``online`` and ``degraded`` mean the unit is there.

Discovery messages are retained; publish them again when HA announces itself (:func:`is_ha_birth`).
"""

from __future__ import annotations

import re
from typing import Any

from edge.transport.topics import UNIT_ID, Topics

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
EVENT_TYPES = ("gunshot", "test")
HA_ONLINE = "online"
HA_OFFLINE = "offline"
_PREFIX = re.compile(r"[^#+]+")

DiscoveryMessage = tuple[str, dict[str, Any], bool]
"""(topic, payload, retain)."""

EVENT_TEMPLATE = (
    "{% if value_json is defined and value_json is mapping and value_json.get('type') in ['gunshot', 'test'] %}"
    '{"event_type": {{ value_json.type | tojson }}'
    "{% for key in ['phase', 'event_id', 'rounds', 'score', 'onset_utc', 'time_source', 'time_uncertainty_us'] %}"
    ", {{ key | tojson }}: {{ value_json.get(key) | tojson }}"
    "{% endfor %}}"
    "{% else %}{}{% endif %}"
)
"""Our event → HA's event payload. Anything else renders ``{}``, which HA ignores."""

STATE_TEMPLATE = (
    "{% if value_json is defined and value_json is mapping %}"
    "{{ value_json.get('state', 'unknown') }}{% else %}{{ value | trim }}{% endif %}"
)
"""The ``state`` of our status JSON (or a bare ``offline`` last will, should one be plain text)."""

STATUS_ATTRIBUTES_TEMPLATE = (
    "{% if value_json is defined and value_json is mapping %}"
    "{{ {'reasons': value_json.get('reasons', []), 'since': value_json.get('since')} | tojson }}"
    "{% else %}{}{% endif %}"
)

AVAILABILITY_TEMPLATE = (
    "{% if value_json is defined and value_json is mapping %}{% set state = value_json.get('state') %}"
    "{% else %}{% set state = value | trim %}{% endif %}"
    "{{ 'online' if state in ['online', 'degraded'] else 'offline' }}"
)
"""``online`` and ``degraded`` both mean available."""


def _check(topics: Topics, unit_id: str, discovery_prefix: str) -> None:
    if not UNIT_ID.fullmatch(unit_id):
        raise ValueError(f"unit id {unit_id!r} must match [a-z0-9-]{{1,64}}")
    if not _PREFIX.fullmatch(discovery_prefix) or discovery_prefix.endswith("/"):
        raise ValueError(f"discovery prefix {discovery_prefix!r} must be non-empty, without '+', '#' or a final '/'")


def discovery_messages(
    topics: Topics,
    unit_id: str,
    firmware: str,
    model_name: str,
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
) -> list[DiscoveryMessage]:
    """Every discovery config for this unit, ready to publish retained (QoS 1)."""
    _check(topics, unit_id, discovery_prefix)
    ident = f"polewatch_{unit_id.replace('-', '_')}"
    device = {
        "identifiers": [ident],
        "name": f"polewatch {unit_id}",
        "manufacturer": "polewatch",
        "model": model_name,
        "sw_version": firmware,
    }
    origin = {"name": "polewatch", "sw_version": firmware}
    availability = [
        {
            "topic": topics.status,
            "value_template": AVAILABILITY_TEMPLATE,
            "payload_available": HA_ONLINE,
            "payload_not_available": HA_OFFLINE,
        }
    ]

    def config(component: str, object_id: str, **keys: Any) -> DiscoveryMessage:
        payload = {"unique_id": f"{ident}_{object_id}", "device": device, "origin": origin, **keys}
        return f"{discovery_prefix}/{component}/{unit_id}/{object_id}/config", payload, True

    return [
        config(
            "event",
            "gunshot",
            name="Gunshot",
            icon="mdi:pistol",
            state_topic=topics.event,
            event_types=list(EVENT_TYPES),
            value_template=EVENT_TEMPLATE,
            availability=availability,
            qos=1,
        ),
        config(
            "sensor",
            "status",
            name="Status",
            icon="mdi:list-status",
            state_topic=topics.status,
            value_template=STATE_TEMPLATE,
            json_attributes_topic=topics.status,
            json_attributes_template=STATUS_ATTRIBUTES_TEMPLATE,
            entity_category="diagnostic",
            qos=1,
        ),
        config(
            "sensor",
            "mic_level",
            name="Microphone level",
            icon="mdi:microphone",
            state_topic=topics.health,
            value_template="{{ value_json.mic.rms_dbfs }}",
            unit_of_measurement="dBFS",
            state_class="measurement",
            entity_category="diagnostic",
            availability=availability,
        ),
        config(
            "sensor",
            "noise_floor",
            name="Noise floor",
            icon="mdi:waveform",
            state_topic=topics.health,
            value_template="{{ value_json.mic.noise_floor_dbfs }}",
            unit_of_measurement="dBFS",
            state_class="measurement",
            entity_category="diagnostic",
            availability=availability,
        ),
        config(
            "sensor",
            "temperature",
            name="CPU temperature",
            state_topic=topics.health,
            value_template="{{ value_json.temperature_c }}",
            device_class="temperature",
            unit_of_measurement="°C",
            state_class="measurement",
            entity_category="diagnostic",
            availability=availability,
        ),
    ]


def discovery_topics(topics: Topics, unit_id: str, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> list[str]:
    """The config topics :func:`discovery_messages` uses; an empty retained payload on each removes the entities."""
    return [topic for topic, _, _ in discovery_messages(topics, unit_id, "", "", discovery_prefix)]


def birth_topic(discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> str:
    """Where HA announces itself (subscribe to it to re-announce)."""
    return f"{discovery_prefix}/status"


def is_ha_birth(topic: str, payload: bytes, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> bool:
    """True for HA's birth message (``online`` on ``{discovery_prefix}/status``): time to publish discovery again."""
    return topic == birth_topic(discovery_prefix) and payload.strip() == HA_ONLINE.encode()
