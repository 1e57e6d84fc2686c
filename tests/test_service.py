"""The whole unit (``edge.service.Unit``) with a real broker: signed events, commands, health and status."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.audio.file_source import ArraySource
from edge.clock import ClockReading, FakeClockState
from edge.config import Config, parse_config
from edge.detect.fake import RecordingScorer
from edge.service import SigningKeyMissingError, Unit
from edge.transport.local_broker import Broker
from edge.transport.outbox import Outbox
from edge.transport.schema import validate
from edge.transport.signing import generate_signing_key, verify
from tests.broker import Subscriber, wait_until
from tests.impulses import RATE, add_impulse, noise, to_int16

UNIT = "pole-7"
PREFIX = "polewatch/v1"
HEALTH = f"{PREFIX}/{UNIT}/health"


def unit_config(tmp_path: Path, broker: Broker | None) -> Config:
    return parse_config(
        {
            "unit": {"id": UNIT, "signing_key": str(tmp_path / "none.pem")},
            "outbox": {"path": str(tmp_path / "data" / "outbox.sqlite")},
            "mqtt": {"host": "127.0.0.1" if broker else "", "port": broker.port if broker else 1883, "tls": False},
            "position": {"surveyed": True, "lat": 41.88, "lon": -87.63, "alt_m": 180.0, "accuracy_m": 0.3},
        }
    )


def scene(bursts: tuple[tuple[float, ...], ...] = ((1.0, 1.3, 1.6), (5.0,))) -> np.ndarray:
    x = noise(8.0, 0.3)  # under the gate floor (the 16-bit floor): no candidate at the start of the stream
    for burst in bursts:
        for t in burst:
            add_impulse(x, round(t * RATE), 12000.0)
    return to_int16(x)


def run_unit(config: Config, samples: np.ndarray, *, realtime: bool = False, **kw: object) -> Unit:
    unit = Unit(
        config,
        source=ArraySource(samples, chunk_samples=1600, realtime=realtime),
        scorer=RecordingScorer(0.9),
        signing_key=kw.pop("key", None) or generate_signing_key(),  # type: ignore[arg-type]
        clock_state=FakeClockState(ClockReading("gps-pps", True, 1.0)),
        **kw,  # type: ignore[arg-type]
    )
    unit.start()
    return unit


def test_every_detection_reaches_the_subscriber_signed_and_valid(tmp_path: Path, broker: Broker) -> None:
    sub = Subscriber(broker.port, [f"{PREFIX}/#"])
    key = generate_signing_key()
    unit = run_unit(unit_config(tmp_path, broker), scene(), key=key)
    try:
        unit.run()
        assert unit.wait_until_sent(10.0)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/event")]) == 4)
    finally:
        unit.stop()
        sub.close()
    events = [m.json() for m in sub.on(f"{PREFIX}/{UNIT}/event")]
    for event in events:
        validate("event", event)
        verify(event, key.public_key())
    assert [(e["phase"], e["rounds"]) for e in events] == [("new", 1), ("final", 3), ("new", 1), ("final", 1)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    first, final = events[0], events[1]
    assert first["event_id"] == final["event_id"] != events[2]["event_id"]
    assert first["onset_ns"] == final["onset_ns"]
    assert first["time_source"] == "gps-pps"
    assert first["position"]["source"] == "surveyed"
    assert [i["offset_ms"] for i in final["impulses"]] == pytest.approx([0.0, 300.0, 600.0], abs=0.2)
    statuses = [m.json() for m in sub.on(f"{PREFIX}/{UNIT}/status")]
    for status in statuses:
        validate("status", status)
    assert statuses[0]["state"] == "online" and statuses[-1]["state"] == "offline"


def test_commands_answer_and_a_test_event_goes_the_normal_way(tmp_path: Path, broker: Broker) -> None:
    sub = Subscriber(broker.port, [f"{PREFIX}/#"])
    quiet = to_int16(noise(30.0, 40.0))
    unit = run_unit(unit_config(tmp_path, broker), quiet, realtime=True)
    worker = threading.Thread(target=unit.run)
    worker.start()
    try:
        assert wait_until(lambda: unit.publisher is not None and unit.publisher.stats().connected, 10.0)
        assert wait_until(lambda: unit.detector is not None and unit.detector.stats.samples > 0, 10.0)
        for name, args in (("set-threshold", {"threshold": 0.8}), ("test-event", {}), ("health", {}), ("nope", {})):
            request = {"request_id": str(uuid.uuid4()), "args": args}
            sub.client.publish(f"{PREFIX}/{UNIT}/cmd/{name}", json.dumps(request), qos=1)
        sub.client.publish(f"{PREFIX}/{UNIT}/cmd/self-test", b"{not json", qos=1)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/reply")]) == 5, 10.0)
        assert sub.wait_for(lambda ms: any(m.topic == HEALTH for m in ms), 10.0)
        assert sub.wait_for(lambda ms: any(m.topic.endswith("/event") for m in ms), 10.0)
    finally:
        unit.stop()
        worker.join(10.0)
        sub.close()
    replies = {m.topic.split("/")[-2]: m.json() for m in sub.all() if m.topic.endswith("/reply")}
    for reply in replies.values():
        validate("reply", reply)
    assert replies["set-threshold"]["ok"] and replies["set-threshold"]["result"]["new"] == 0.8
    assert unit.detector is not None and unit.detector.threshold == 0.8
    assert replies["test-event"]["ok"]
    assert not replies["nope"]["ok"] and not replies["self-test"]["ok"]
    test_event = next(m.json() for m in sub.all() if m.topic.endswith("/event"))
    assert test_event["type"] == "test" and test_event["event_id"] == replies["test-event"]["result"]["event_id"]
    validate("health", next(m.json() for m in sub.all() if m.topic == HEALTH))


def test_without_a_broker_events_wait_in_the_outbox(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = unit_config(tmp_path, None)
    unit = run_unit(config, scene())
    try:
        unit.run()
    finally:
        unit.stop()
    assert "no broker configured" in caplog.text
    box = Outbox(Path(config.outbox.path), max_bytes=1 << 20)
    assert box.depth()["event"] == 4
    box.close()


def test_a_unit_without_its_signing_key_says_how_to_make_one(tmp_path: Path) -> None:
    config = unit_config(tmp_path, None)
    unit = Unit(config, source=ArraySource(scene()), scorer=RecordingScorer())
    with pytest.raises(SigningKeyMissingError, match=r"tools\.pki issue-unit pole-7"):
        unit.start()


def test_seq_continues_after_a_restart(tmp_path: Path) -> None:
    config = unit_config(tmp_path, None)
    for _ in range(2):
        unit = run_unit(config, scene(((1.0,),)))
        unit.run()
        unit.stop()
    box = Outbox(Path(config.outbox.path), max_bytes=1 << 20)
    seqs = [json.loads(row.payload)["seq"] for row in box.peek(10)]
    box.close()
    assert seqs == [1, 2, 3, 4]


def test_stop_is_idempotent_and_reverses_start(tmp_path: Path) -> None:
    unit = run_unit(replace(unit_config(tmp_path, None)), scene(((1.0,),)))
    unit.stop()
    unit.stop()


def test_home_assistant_discovery_is_announced_and_renewed_on_its_birth(tmp_path: Path, broker: Broker) -> None:
    config = unit_config(tmp_path, broker)
    config = replace(config, homeassistant=replace(config.homeassistant, enabled=True))
    sub = Subscriber(broker.port, ["homeassistant/#"])
    discovery = f"homeassistant/event/{UNIT}/gunshot/config"
    unit = run_unit(config, to_int16(noise(30.0, 10.0)), realtime=True)
    worker = threading.Thread(target=unit.run)
    worker.start()
    try:
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == discovery]) == 1, 10.0)
        assert sub.on(discovery)[0].json()["state_topic"] == f"{PREFIX}/{UNIT}/event"
        sub.client.publish("homeassistant/status", b"online", qos=1)
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == discovery]) == 2, 10.0)
    finally:
        unit.stop()
        worker.join(10.0)
        sub.close()
