"""The MQTT publisher against a real mosquitto: outages, SIGKILL, backlog order, ACL, status and LWT, commands."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import MqttConfig, parse_config
from edge.errors import ConfigError
from edge.transport.local_broker import Broker, free_port
from edge.transport.outbox import Outbox
from edge.transport.publisher import MqttPublisher
from edge.transport.topics import Topics
from tests.broker import Received, Subscriber, wait_until
from tests.certs import ThrowawayPki
from tests.conftest import TEST_PREFIX
from tests.publisher_proc import event_payload, status_payload

UNIT = "pole-1"
TOPICS = Topics(UNIT, TEST_PREFIX)
REPO = Path(__file__).resolve().parent.parent


def plain_settings(broker: Broker, **overrides: object) -> MqttConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "tls": False,
        "keepalive_s": 5,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
    }
    values.update(overrides)
    return MqttConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite", max_bytes=100_000_000)
    yield box
    box.close()


def put_event(box: Outbox, seq: int, topics: Topics = TOPICS) -> None:
    box.put("event", topics.event, event_payload(topics.unit, seq))


def keys(messages: list[Received]) -> list[tuple[str, str]]:
    """(event_id, phase) of each message: what consumers dedupe on."""
    return [(m.json()["event_id"], m.json()["phase"]) for m in messages]


def expected_keys(count: int, unit: str = UNIT) -> set[tuple[str, str]]:
    return {(f"{unit}-{seq // 2}", ("new", "final")[seq % 2]) for seq in range(count)}


def states(messages: list[Received]) -> list[str]:
    return [m.json()["state"] for m in messages]


def test_online_retained_on_connect_and_offline_on_clean_stop(broker: Broker, outbox: Outbox) -> None:
    publisher = MqttPublisher(outbox, TOPICS, plain_settings(broker), status_payload=status_payload)
    publisher.start()
    assert wait_until(lambda: publisher.stats().connected, 5)
    late = Subscriber(broker.port, [TOPICS.status], client_id="late")
    assert late.wait_for(lambda ms: len(ms) == 1, 5)
    assert late.all()[0].retain and states(late.all()) == ["online"]
    publisher.stop(clean=True)
    assert late.wait_for(lambda ms: states(ms) == ["online", "offline"], 5)
    later = Subscriber(broker.port, [TOPICS.status], client_id="later")
    assert later.wait_for(lambda ms: states(ms) == ["offline"], 5)
    assert later.all()[0].retain
    late.close()
    later.close()


def test_events_put_while_the_broker_is_down_all_arrive_after_it_returns(
    persistent_broker: Broker, outbox: Outbox
) -> None:
    central = Subscriber(persistent_broker.port, [TOPICS.event], client_id="central", persistent=True)
    publisher = MqttPublisher(outbox, TOPICS, plain_settings(persistent_broker), status_payload=status_payload)
    publisher.start()
    for seq in range(10):
        put_event(outbox, seq)
        publisher.wake()
    assert central.wait_for(lambda ms: len(ms) >= 10, 5)
    persistent_broker.stop()
    assert wait_until(lambda: not publisher.stats().connected, 5)
    down_since = time.monotonic()
    for seq in range(10, 60):
        put_event(outbox, seq)
        publisher.wake()
        time.sleep(0.05)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - down_since)))
    assert len(outbox) == 50, "nothing is lost or dropped while offline"
    persistent_broker.start()
    arrived = central.wait_for(lambda ms: set(keys(ms)) == expected_keys(60), 10)
    assert arrived, (sorted(expected_keys(60) - set(keys(central.all()))), persistent_broker.log()[-3000:])
    assert wait_until(lambda: len(outbox) == 0, 5)
    stats = publisher.stats()
    assert stats.connects == 2
    assert stats.acked >= 60
    publisher.stop()
    central.close()


def test_a_backlog_of_1000_events_drains_in_order_events_before_media_before_health(
    persistent_broker: Broker, outbox: Outbox
) -> None:
    central = Subscriber(persistent_broker.port, [TOPICS.base + "/#"], client_id="central", persistent=True)
    persistent_broker.stop()
    publisher = MqttPublisher(
        outbox, TOPICS, plain_settings(persistent_broker, inflight=50), status_payload=status_payload
    )
    publisher.start()
    for seq in range(1000):
        if seq % 10 == 0:
            outbox.put("health", TOPICS.health, json.dumps({"seq": seq}).encode(), qos=1)
        if seq % 40 == 0:
            outbox.put("media", TOPICS.media, json.dumps({"seq": seq}).encode())
        put_event(outbox, seq)
    persistent_broker.start()

    def complete(ms: list[Received]) -> bool:
        return sum(m.topic == TOPICS.health for m in ms) == 100

    assert central.wait_for(complete, 20)
    received = [m for m in central.all() if m.topic != TOPICS.status]
    kinds = [m.topic.rsplit("/", 1)[1] for m in received]
    assert kinds == ["event"] * 1000 + ["media"] * 25 + ["health"] * 100
    for kind in ("event", "media", "health"):
        seqs = [m.json()["seq"] for m in received if m.topic.endswith("/" + kind)]
        assert seqs == sorted(seqs), kind
    assert set(keys(received[:1000])) == expected_keys(1000)
    assert wait_until(lambda: len(outbox) == 0, 5)
    publisher.stop()
    central.close()


def test_sigkill_mid_backlog_loses_nothing_and_the_broker_announces_offline(broker: Broker, tmp_path: Path) -> None:
    central = Subscriber(broker.port, [TOPICS.base + "/#"], client_id="central")
    outbox_path = tmp_path / "unit" / "outbox.sqlite"
    command = [sys.executable, "-m", "tests.publisher_proc", "--outbox", str(outbox_path), "--port", str(broker.port)]
    total = 2000
    unit = subprocess.Popen(
        [*command, "--events", str(total), "--inflight", "1", "--keep-running"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert central.wait_for(lambda ms: sum(m.topic == TOPICS.event for m in ms) >= 200, 20)
        unit.send_signal(signal.SIGKILL)
        unit.wait(timeout=5)
    finally:
        if unit.poll() is None:
            unit.kill()
    assert central.wait_for(lambda ms: "offline" in states([m for m in ms if m.topic == TOPICS.status]), 5), (
        "the broker publishes the will when the unit dies"
    )
    left = Outbox(outbox_path, max_bytes=100_000_000)
    backlog = len(left)
    left.close()
    assert 0 < backlog < total, "killed mid-backlog"

    again = subprocess.run([*command], cwd=REPO, capture_output=True, timeout=30, check=False)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert central.wait_for(lambda ms: set(keys([m for m in ms if m.topic == TOPICS.event])) == expected_keys(total), 5)
    events = keys([m for m in central.all() if m.topic == TOPICS.event])
    assert len(events) - len(set(events)) <= 2, "at most the in-flight message is sent twice"
    assert states([m for m in central.all() if m.topic == TOPICS.status])[-1] == "offline"
    central.close()


def test_refused_connection_is_not_treated_as_connected(
    tmp_path: Path, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    conf = tmp_path / "closed" / "mosquitto.conf"
    conf.parent.mkdir()
    conf.write_text(f"user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous false\n")
    closed = Broker(conf, port)
    closed.start()
    put_event(outbox, 0)
    publisher = MqttPublisher(outbox, TOPICS, plain_settings(closed), status_payload=status_payload)
    with caplog.at_level(logging.ERROR):
        publisher.start()
        assert wait_until(lambda: "refused the connection" in caplog.text, 5)
    time.sleep(0.2)
    stats = publisher.stats()
    assert not stats.connected
    assert stats.published == 0
    assert "Not authorized" in stats.last_error
    assert len(outbox) == 1
    publisher.stop()
    closed.stop()


def test_commands_reach_the_handler_and_no_broker_keeps_everything(
    broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    got: list[tuple[str, bytes]] = []
    publisher = MqttPublisher(
        outbox,
        TOPICS,
        plain_settings(broker),
        status_payload=status_payload,
        on_command=lambda name, body: got.append((name, body)),
    )
    publisher.start()
    assert wait_until(lambda: publisher.stats().connected, 5)
    central = Subscriber(broker.port, [TOPICS.base + "/#"], client_id="central")
    central.client.publish(TOPICS.command("self-test"), b'{"id": 1}', qos=1).wait_for_publish(5)
    central.client.publish(TOPICS.reply("self-test"), b"not a command", qos=1).wait_for_publish(5)
    central.client.publish(Topics("pole-2", TEST_PREFIX).command("self-test"), b"other", qos=1).wait_for_publish(5)
    assert wait_until(lambda: len(got) >= 1, 5)
    time.sleep(0.2)
    assert got == [("self-test", b'{"id": 1}')]
    publisher.stop()
    central.close()

    offline_box = Outbox(tmp_path / "offline.sqlite", max_bytes=1_000_000)
    put_event(offline_box, 0)
    idle = MqttPublisher(offline_box, TOPICS, MqttConfig(host=""), status_payload=status_payload)
    with caplog.at_level(logging.WARNING):
        idle.start()
    assert "no broker configured; events stay in the outbox" in caplog.text
    idle.stop()
    assert len(offline_box) == 1


def tls_settings(broker: Broker, pki: ThrowawayPki, unit: str) -> MqttConfig:
    files = pki.client(unit)
    return MqttConfig(
        host="localhost",
        port=broker.port,
        tls=True,
        ca_file=str(files.ca_file),
        cert_file=str(files.cert_file),
        key_file=str(files.key_file),
        reconnect_min_s=1,
        reconnect_max_s=1,
    )


def test_mutual_tls_and_the_acl_keep_a_unit_inside_its_own_topics(
    tls_broker: Broker, pki: ThrowawayPki, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    unit_a, unit_b = Topics("unit-a", TEST_PREFIX), Topics("unit-b", TEST_PREFIX)
    central = Subscriber(tls_broker.port, [TEST_PREFIX + "/#"], client_id="central", tls=pki.client("central"))
    publisher = MqttPublisher(outbox, unit_a, tls_settings(tls_broker, pki, "unit-a"), status_payload=status_payload)
    with caplog.at_level(logging.ERROR):
        publisher.start()
        assert wait_until(lambda: publisher.stats().connected, 5), tls_broker.log()[-2000:]
        put_event(outbox, 0, unit_b)  # A's certificate, B's topic
        put_event(outbox, 1, unit_b)
        put_event(outbox, 0, unit_a)
        publisher.wake()
        assert wait_until(lambda: len(outbox) == 0, 5)
    assert central.wait_for(lambda ms: any(m.topic == unit_a.event for m in ms), 5)
    time.sleep(0.3)
    assert [m.topic for m in central.all() if m.topic.startswith(unit_b.base)] == []
    dead = outbox.dead()
    assert [(row.topic, reason) for row, reason in dead] == [(unit_b.event, "Not authorized")] * 2
    assert publisher.stats().dead == 2
    refusals = [r for r in caplog.records if "broker refused a event message" in r.getMessage()]
    assert len(refusals) == 1, "one ERROR per topic, the rest is counted"
    assert unit_b.event in refusals[0].getMessage()

    # A may subscribe to B's commands (mosquitto 2.0 grants the SUBACK) but is never sent one
    spy = Subscriber(tls_broker.port, [unit_b.base + "/cmd/#"], client_id="unit-a-spy", tls=pki.client("unit-a"))
    real_b = Subscriber(tls_broker.port, [unit_b.commands], client_id="unit-b", tls=pki.client("unit-b"))
    central.client.publish(unit_b.command("self-test"), b"{}", qos=1).wait_for_publish(5)
    assert real_b.wait_for(lambda ms: len(ms) == 1, 5)
    time.sleep(0.3)
    assert spy.all() == []
    publisher.stop()
    for client in (central, spy, real_b):
        client.close()


@pytest.mark.parametrize(
    ("mqtt", "problem"),
    [
        ({"host": "b", "ca_file": "ca.crt", "cert_file": "u.crt"}, 'mqtt.key_file = "": required when mqtt.tls = true'),
        ({"host": "b", "tls": False, "port": 8883}, "mqtt.port = 8883: 8883 is the MQTT TLS port"),
        (
            {"host": "b", "tls": True, "port": 1883, "ca_file": "a", "cert_file": "b", "key_file": "c"},
            "mqtt.port = 1883: 1883 is the plain MQTT port",
        ),
        ({"reconnect_min_s": 30, "reconnect_max_s": 10}, "mqtt.reconnect_max_s = 10: must be at least"),
        ({"inflight": 0}, "mqtt.inflight = 0: must be between 1 and 1000 (messages)"),
        ({"prefix": "polewatch/v1/"}, "mqtt.prefix"),
    ],
)
def test_mqtt_settings_cross_checks(mqtt: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"mqtt": mqtt})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_mqtt_outbox_and_health_defaults() -> None:
    config = parse_config({"mqtt": {"host": "", "tls": True}})
    assert (config.mqtt.port, config.mqtt.prefix, config.mqtt.client_id) == (8883, TEST_PREFIX, "")
    assert config.outbox.path == "/data/polewatch/outbox.sqlite"
    assert config.health.interval_s == 60
    Topics(config.unit.id, config.mqtt.prefix)
