"""Detections become signed event messages in the outbox: one ``event_id`` per burst, ``new`` then ``final``."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import __version__
from edge.clock import OnsetTime
from edge.detect.bursts import Detection, Impulse
from edge.detect.runtime import ModelInfo
from edge.transport.messages import Position, build_event
from edge.transport.outbox import Outbox
from edge.transport.signing import sign
from edge.transport.topics import Topics

log = logging.getLogger(__name__)

SEQ_COUNTER = "event"


class EventEmitter:
    """Builds, signs and stores the events of one unit; ``on_sent`` hears every stored event (e.g. to print it)."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        topics: Topics,
        signing_key: Ed25519PrivateKey,
        time_of: Callable[[int], OnsetTime],
        position: Position | None,
        model: ModelInfo | dict[str, Any],
        threshold: Callable[[], float],
        wake: Callable[[], None] = lambda: None,
        on_sent: Callable[[dict[str, Any]], None] | None = None,
        sample_rate: int = 16_000,
    ) -> None:
        self._outbox = outbox
        self._topics = topics
        self._key = signing_key
        self._time_of = time_of
        self._position = position
        self._model = model
        self._threshold = threshold
        self._wake = wake
        self._on_sent = on_sent
        self._sample_rate = sample_rate
        self._open: dict[int, tuple[str, OnsetTime]] = {}
        """Detection number → event id and onset time given at ``new``; ``final`` repeats both."""
        self._lock = threading.Lock()
        """Detections arrive on the audio thread, test events on the command thread."""

    def on_detection(self, det: Detection) -> dict[str, Any]:
        with self._lock:
            if det.phase == "new" or det.number not in self._open:
                self._open[det.number] = (str(uuid.uuid4()), self._time_of(det.onset))
            event_id, onset = self._open[det.number] if det.phase == "new" else self._open.pop(det.number)
            return self._store(det, event_id, onset, "gunshot")

    def emit_test(self, onset_index: int) -> str:
        """A ``type: "test"`` event through the same path as a real one (technicians check the whole chain)."""
        event_id = str(uuid.uuid4())
        with self._lock:
            test = Detection(0, "final", (Impulse(onset_index, 0.0, -120.0),))
            self._store(test, event_id, self._time_of(onset_index), "test")
        return event_id

    def _store(self, det: Detection, event_id: str, onset: OnsetTime, kind: str) -> dict[str, Any]:
        """Build, sign and durably store one event (the caller holds the lock)."""
        seq = self._outbox.next_seq(SEQ_COUNTER)
        event = build_event(
            det,
            event_id=event_id,
            unit_id=self._topics.unit,
            seq=seq,
            onset=onset,
            position=self._position,
            temperature_c=None,
            threshold=self._threshold(),
            model=self._model,
            firmware=__version__,
            sample_rate=self._sample_rate,
            type="test" if kind == "test" else "gunshot",
        )
        signed = sign(event, self._key)
        self._outbox.put("event", self._topics.event, json.dumps(signed, separators=(",", ":")).encode())
        log.info("event %s %s seq %d stored: %s x%d", event_id, det.phase, seq, kind, det.rounds)
        self._wake()
        if self._on_sent is not None:
            self._on_sent(signed)
        return signed
