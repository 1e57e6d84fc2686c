"""The composition root: builds the unit from its config, starts parts in order, stops them in reverse.

``polewatch run`` (microphone) and ``polewatch demo`` (a replayed scene) both use :class:`Unit`; only the audio
source and the config differ. Start order: outbox (nothing accepted may be lost) → signing key → model and detector
(a broken model fails before anything is announced) → timebase → MQTT publisher → commands and health → audio.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import __version__
from edge.audio.source import AudioSource, Int16Array, SourceStats
from edge.clock import ClockState, KernelClockState, OnsetTime
from edge.config import Config
from edge.detect.bursts import Detection
from edge.detect.detector import Scorer, StreamingDetector
from edge.detect.params import DetectorParams
from edge.detect.runtime import TfliteModel
from edge.errors import PolewatchError
from edge.health import HealthSnapshot, MicLevel, OutboxState, collect_health, degraded_reasons
from edge.health_loop import HealthLoop
from edge.timebase import Timebase
from edge.transport.commands import UnitActions, standard_dispatcher
from edge.transport.events import EventEmitter
from edge.transport.homeassistant import birth_topic, discovery_messages, is_ha_birth
from edge.transport.messages import Position, build_status
from edge.transport.outbox import Outbox
from edge.transport.publisher import MessageHandler, MqttPublisher
from edge.transport.signing import load_private_key
from edge.transport.topics import Topics

log = logging.getLogger(__name__)

RUN_STOP_TIMEOUT_S = 10.0
DetectionHandler = Callable[[Detection], None]
EventHandler = Callable[[dict[str, Any]], None]


class SigningKeyMissingError(PolewatchError, FileNotFoundError):
    """The unit has no key to sign its events with."""


@dataclass
class RunSummary:
    seconds: float = 0.0
    candidates: int = 0
    detections: list[Detection] = field(default_factory=list)
    """Final detections, in order."""


def _json_bytes(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


class Unit:
    """One pole unit: audio → detector → signed events in the outbox → MQTT; plus health, status and commands."""

    def __init__(
        self,
        config: Config,
        *,
        source: AudioSource | None = None,
        scorer: Scorer | None = None,
        handlers: list[DetectionHandler] | None = None,
        on_event: EventHandler | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        clock_state: ClockState | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.unit.id, config.mqtt.prefix)
        self.handlers = list(handlers or [])
        self._source = source
        self._scorer = scorer
        self._on_event = on_event
        self._signing_key = signing_key
        self._clock_state = clock_state or KernelClockState()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self._stopping = threading.Event()
        self._run_done = threading.Event()
        self._run_done.set()
        self._time_lock = threading.Lock()
        """The timebase is fed on the audio thread and read by commands on the MQTT thread."""
        self._started_monotonic = time.monotonic()
        self._started_ns = time.time_ns()
        self.mic = MicLevel()
        self.outbox: Outbox | None = None
        self.model: TfliteModel | None = None
        self.detector: StreamingDetector | None = None
        self.timebase: Timebase | None = None
        self.publisher: MqttPublisher | None = None
        self.emitter: EventEmitter | None = None
        self.health: HealthLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        started = False
        try:
            self._open_outbox()
            self._load_signing_key()
            self._start_detector()
            self._start_timebase()
            self._start_publisher()
            self._start_health()
            self._stops.append(("detector", self._wait_for_run))
            self._start_source()
            started = True
        finally:
            if not started:
                self.stop()

    def stop(self) -> None:
        """Idempotent; safe to call from a signal handler."""
        self._stopping.set()
        while self._stops:
            name, stop = self._stops.pop()
            log.debug("stopping %s", name)
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", name)

    def run(self) -> RunSummary:
        """Process audio until the source ends or :meth:`stop` is called; returns what happened."""
        if self._source is None or self.detector is None:
            self.start()
        assert self.detector is not None and self._source is not None and self.emitter is not None
        summary = RunSummary()
        detector = self.detector
        self._run_done.clear()
        try:
            for det in detector.run(self._observed(self._source.chunks())):
                if det.phase == "final":
                    summary.detections.append(det)
                for handler in self.handlers:
                    handler(det)
                with self._time_lock:
                    self.emitter.on_detection(det)
        finally:
            self._run_done.set()
        summary.seconds = detector.stats.samples / detector.front_end.sample_rate
        summary.candidates = detector.stats.candidates
        return summary

    def _wait_for_run(self) -> None:
        """A stop from another thread lets :meth:`run` store its last (final) events before the outbox closes."""
        if not self._run_done.wait(RUN_STOP_TIMEOUT_S):
            log.error("the audio loop did not end within %.0f s of the stop request", RUN_STOP_TIMEOUT_S)

    def wait_until_sent(self, timeout_s: float) -> bool:
        """For the demo and tools: wait until the broker acknowledged everything in the outbox."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox is None or len(self.outbox) == 0:
                return True
            time.sleep(0.02)
        return False

    # -- parts -----------------------------------------------------------------------------------------------
    def _open_outbox(self) -> None:
        cfg = self.config.outbox
        path = Path(cfg.path)
        try:
            self.outbox = Outbox(path, max_bytes=int(cfg.max_mb * 1_000_000))
        except OSError as exc:
            raise PolewatchError(
                f"cannot open the outbox at {path} ({exc}); check the data partition is mounted and writable "
                "or set outbox.path"
            ) from exc
        self._stops.append(("outbox", self.outbox.close))

    def _load_signing_key(self) -> None:
        if self._signing_key is not None:
            return
        path = Path(self.config.unit.signing_key)
        if not path.exists():
            raise SigningKeyMissingError(
                f"signing key {path} not found: every event is signed. Issue one with "
                f"`python -m tools.pki issue-unit {self.config.unit.id} --ca CA_DIR --out {path.parent}` "
                "or set unit.signing_key"
            )
        self._signing_key = load_private_key(path)

    def _start_detector(self) -> None:
        cfg = self.config.detect
        if self._scorer is None:
            self.model = TfliteModel(Path(cfg.model) if cfg.model else None, threads=cfg.num_threads)
            self._scorer = self.model
        threshold = cfg.threshold or (self.model.info.threshold if self.model else 0.5)
        params = DetectorParams.from_config(cfg)
        self.detector = StreamingDetector(
            self._scorer,
            threshold,
            gate=params.gate,
            bursts=params.bursts,
            ring_seconds=self.config.audio.ring_seconds,
            texture=params.texture,
        )
        log.info("detector ready: threshold %.3f, burst gap %.1f s", threshold, cfg.burst_gap_s)

    def _start_timebase(self) -> None:
        self.timebase = Timebase(self._clock_state)

    def _start_publisher(self) -> None:
        assert self.outbox is not None and self._signing_key is not None and self.detector is not None
        dispatcher = standard_dispatcher(
            UnitActions(
                self_test=self.self_test,
                emit_test_event=self._emit_test_event,
                get_threshold=lambda: self._detector().threshold,
                set_threshold=self._set_threshold,
                request_health=lambda: self.health.request() if self.health else None,
            )
        )

        def on_command(name: str, payload: bytes) -> None:
            reply = dispatcher.handle(name, payload)
            assert self.outbox is not None and self.publisher is not None
            self.outbox.put("reply", self.topics.reply(name), _json_bytes(reply))
            self.publisher.wake()

        listen: dict[str, MessageHandler] = {}
        if self.config.homeassistant.enabled:
            listen[birth_topic(self.config.homeassistant.discovery_prefix)] = self._on_home_assistant_status
        self.publisher = MqttPublisher(
            self.outbox,
            self.topics,
            self.config.mqtt,
            status_payload=self._status_payload,
            on_command=on_command,
            listen=listen,
        )
        self.emitter = EventEmitter(
            outbox=self.outbox,
            topics=self.topics,
            signing_key=self._signing_key,
            time_of=self._time_of,
            position=self._position(),
            model=self.model.identity if self.model else {"name": "external", "version": "0", "sha256": "0" * 64},
            threshold=lambda: self._detector().threshold,
            wake=self.publisher.wake,
            on_sent=self._on_event,
        )
        if self.config.homeassistant.enabled:
            self._announce_to_home_assistant()
        self.publisher.start()
        self._stops.append(("mqtt publisher", self.publisher.stop))

    def _start_health(self) -> None:
        assert self.publisher is not None
        self.health = HealthLoop(
            self.config.health.interval_s,
            collect=self._collect_health,
            publish=self._publish_health,
            set_status=self.publisher.set_status,
        )
        self.health.start()
        self._stops.append(("health", self.health.stop))

    def _start_source(self) -> None:
        if self._source is None:
            from edge.audio.factory import open_configured

            self._source = open_configured(self.config.audio)
        self._stops.append(("audio source", self._source.close))
        log.info("audio source %s open", self._source.name)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _detector(self) -> StreamingDetector:
        assert self.detector is not None
        return self.detector

    def _observed(self, chunks: Iterator[Int16Array]) -> Iterator[Int16Array]:
        """Feeds the timebase and the mic level, and ends the stream when the unit is stopping."""
        assert self.timebase is not None
        end = 0
        for chunk in chunks:
            end += len(chunk)
            with self._time_lock:
                self.timebase.observe(end)
            self.mic.update(chunk)
            yield chunk
            if self._stopping.is_set():
                return

    def _time_of(self, index: int) -> OnsetTime:
        assert self.timebase is not None
        return self.timebase.utc_of(index)

    def _position(self) -> Position | None:
        pos = self.config.position
        if not pos.surveyed:
            return None
        return Position(pos.lat, pos.lon, pos.alt_m, pos.accuracy_m, source="surveyed")

    def _status_payload(self, state: str, reasons: list[str]) -> bytes:
        model = self.model.identity if self.model else None
        return _json_bytes(
            build_status(
                state=state,  # type: ignore[arg-type]
                since_ns=self._started_ns,
                firmware=__version__,
                model=model,
                reasons=reasons,
            )
        )

    def _set_threshold(self, value: float) -> None:
        self._detector().threshold = value

    def _emit_test_event(self) -> str:
        assert self.emitter is not None
        with self._time_lock:
            return self.emitter.emit_test(max(self._detector().stats.samples - 1, 0))

    def _collect_health(self) -> HealthSnapshot:
        assert self.outbox is not None and self.timebase is not None
        return collect_health(
            unit_id=self.topics.unit,
            mic=self.mic,
            source_stats=self._source.stats if self._source is not None else SourceStats(),
            clock=self.timebase.clock,
            data_path=self.outbox.path.parent,
            started_monotonic=self._started_monotonic,
            outbox=OutboxState(len(self.outbox), self.outbox.oldest_age_s() if len(self.outbox) else None),
        )

    def _publish_health(self, snapshot: HealthSnapshot) -> None:
        assert self.outbox is not None and self.publisher is not None
        self.outbox.put("health", self.topics.health, _json_bytes(snapshot.as_message()))
        self.publisher.wake()

    def self_test(self) -> dict[str, Any]:
        """What a technician's ``self-test`` command answers: every part's state, now."""
        snapshot = self._collect_health()
        delivery = self.publisher.stats() if self.publisher else None
        reasons = [r.code for r in degraded_reasons(snapshot)]
        return {
            "passed": not reasons,
            "reasons": reasons,
            "health": snapshot.as_message(),
            "model": self.model.info.name + " " + self.model.info.version if self.model else None,
            "broker_connected": bool(delivery and delivery.connected),
            "threshold": self._detector().threshold,
        }

    def _on_home_assistant_status(self, topic: str, payload: bytes) -> None:
        if is_ha_birth(topic, payload, self.config.homeassistant.discovery_prefix):
            log.info("Home Assistant (re)started: announcing this unit again")
            self._announce_to_home_assistant()
            assert self.publisher is not None
            self.publisher.wake()

    def _announce_to_home_assistant(self) -> None:
        assert self.outbox is not None
        model_name = self.model.info.name if self.model else "external"
        for topic, payload, retain in discovery_messages(
            self.topics,
            self.topics.unit,
            __version__,
            model_name,
            self.config.homeassistant.discovery_prefix,
        ):
            self.outbox.put("status", topic, _json_bytes(payload), retain=retain, replace=True)
