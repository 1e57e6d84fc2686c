"""``polewatch demo``: a synthetic street scene replayed through the same unit as ``polewatch run``.

The demo brings its own broker: a local mosquitto on a free port, a throw-away signing key and outbox in a
temporary folder, and a subscriber that prints what a central system receives and checks each signature.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.config import Config, load_config, parse_config
from edge.detect.bursts import Detection
from edge.detect.report import describe
from edge.errors import PolewatchError, SignatureError
from edge.service import RunSummary, Unit
from edge.transport.signing import generate_signing_key, public_key_id, verify

MATCH_S = 0.05
"""A detection starting within this many seconds of a scene burst's rounds counts as finding that burst."""
DEMO_UNIT = "demo-unit"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="replay a built-in street scene through the full unit and print detections")
    p.add_argument("--config", type=Path, default=None, help="take [detect] and [audio] settings from this file")
    p.add_argument("--realtime", action="store_true", help="pace the scene like a microphone")
    p.add_argument("--loop", action="store_true", help="replay the scene until interrupted")
    p.add_argument("--seed", type=int, default=0, help="which generated scene (default 0)")
    p.add_argument("--save-scene", type=Path, default=None, metavar="WAV", help="also write the scene to a file")
    p.add_argument("--no-broker", action="store_true", help="do not start a local mosquitto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.audio.file_source import ArraySource
    from edge.scene.compose import demo_scene, write_scene

    scene = demo_scene(seed=args.seed)
    if args.save_scene:
        write_scene(scene, args.save_scene)
    guns = [e for e in scene.events if e.kind == "gunshot"]
    others = [e for e in scene.events if e.kind != "gunshot"]
    print(
        f"demo: {len(scene.samples) / 16_000:.0f} s street scene with {len(guns)} gunshot bursts "
        f"({', '.join(str(e.rounds) for e in guns)} rounds) and {len(others)} other impulses "
        f"({', '.join(sorted({e.kind for e in others}))})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="polewatch-demo-") as tmp:
        workdir = Path(tmp)
        base = load_config(args.config) if args.config else parse_config({})
        key = generate_signing_key()
        broker = None if args.no_broker else _start_broker(workdir)
        config = _demo_config(base, workdir, broker.port if broker else 0)
        source = ArraySource(
            scene.samples, chunk_samples=config.audio.chunk_ms * 16, realtime=args.realtime, loop=args.loop
        )
        subscriber = _Subscriber(key.public_key(), config.mqtt.port, config.mqtt.prefix) if broker else None
        unit = Unit(config, source=source, handlers=[_print_detection], signing_key=key)
        try:
            summary = unit.run()
            if broker and not unit.wait_until_sent(10.0):
                print("demo: the broker did not acknowledge every message within 10 s", flush=True)
            if subscriber and not subscriber.wait_for_events(2 * len(summary.detections), 5.0):
                print("demo: the subscriber did not receive every event within 5 s", flush=True)
        finally:
            unit.stop()
            if subscriber:
                subscriber.close()
            if broker:
                broker.stop()
        if subscriber:
            print(subscriber.summary(), flush=True)
        else:
            print(f"demo: no broker; {len(summary.detections)} final event(s) were kept in the outbox", flush=True)
    print(_summary_line(summary, scene.events, len(scene.samples)), flush=True)
    return 0


def _start_broker(workdir: Path) -> Any:
    from edge.transport.local_broker import Broker, free_port, plain_conf

    port = free_port()
    broker = Broker(plain_conf(workdir / "broker", port), port)
    try:
        broker.start()
    except PolewatchError as exc:
        print(f"demo: no local broker ({exc}); events stay in the outbox", flush=True)
        return None
    print(f"demo: local mosquitto on 127.0.0.1:{port}; a subscriber listens on polewatch/v1/#", flush=True)
    return broker


def _demo_config(base: Config, workdir: Path, port: int) -> Config:
    return replace(
        base,
        unit=replace(base.unit, id=DEMO_UNIT, signing_key=str(workdir / "signing.pem")),
        outbox=replace(base.outbox, path=str(workdir / "outbox.sqlite")),
        mqtt=replace(base.mqtt, host="127.0.0.1" if port else "", port=port or 1883, tls=False, reconnect_max_s=2),
        health=replace(base.health, interval_s=10),
    )


class _Subscriber:
    """Prints each event a central system would receive and verifies its signature with the unit's public key."""

    def __init__(self, public_key: Any, port: int, prefix: str) -> None:
        from edge.transport.watch import Watcher

        self._key = public_key
        self._lock = threading.Condition()
        self.counts: Counter[str] = Counter()
        self.bad_signatures = 0
        self._watcher = Watcher("127.0.0.1", port, f"{prefix}/#", self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        kind = topic.rsplit("/", 1)[-1]
        try:
            message = json.loads(payload)
        except ValueError:
            message = {}
        with self._lock:
            self.counts[kind] += 1
            if kind == "event":
                self._print_event(topic, message)
                self._lock.notify_all()
            elif kind == "status":
                print(f"  subscriber <- {topic}: {message.get('state')} {message.get('reasons') or ''}", flush=True)

    def _print_event(self, topic: str, event: dict[str, Any]) -> None:
        try:
            verify(event, self._key)
            check = f"signature ok (key {public_key_id(self._key)})"
        except SignatureError as exc:
            self.bad_signatures += 1
            check = f"SIGNATURE FAILED: {exc}"
        print(
            f"  subscriber <- {topic}: {event.get('type')} {event.get('phase')} seq {event.get('seq')} "
            f"rounds {event.get('rounds')} at {event.get('onset_utc')} ({event.get('time_source')}), {check}",
            flush=True,
        )

    def wait_for_events(self, count: int, timeout_s: float) -> bool:
        """The broker acknowledges a message before it reaches this subscriber: wait for the delivery too."""
        with self._lock:
            return self._lock.wait_for(lambda: self.counts["event"] >= count, timeout_s)

    def summary(self) -> str:
        with self._lock:
            got = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items())) or "nothing"
            sigs = "all event signatures verified" if not self.bad_signatures else f"{self.bad_signatures} BAD"
            return f"demo: the subscriber received {got}; {sigs}"

    def close(self) -> None:
        self._watcher.close()


def _print_detection(det: Detection) -> None:
    print(describe(det), flush=True)


def _summary_line(summary: RunSummary, events: list[Any], scene_samples: int) -> str:
    guns = [e for e in events if e.kind == "gunshot"]
    slack = MATCH_S * 16_000
    found, false_alarms = 0, 0
    for det in summary.detections:
        at = det.onset % scene_samples
        if any(g.impulses[0] - slack <= at <= g.impulses[-1] + slack for g in guns):
            found += 1
        else:
            false_alarms += 1
    rounds = "/".join(str(d.rounds) for d in summary.detections) or "-"
    return (
        f"demo done: {summary.seconds:.1f} s of audio, {summary.candidates} impulses classified, "
        f"{found} of {len(guns)} gunshot bursts detected (rounds {rounds}), {false_alarms} false alarm(s)"
    )
