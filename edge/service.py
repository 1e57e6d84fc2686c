"""The composition root: builds the unit from its config, starts parts in order, stops them in reverse.

``polewatch run`` (microphone) and ``polewatch demo`` (a replayed scene) both use :class:`Unit`; only the audio
source differs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.audio.source import AudioSource, Int16Array
from edge.config import Config
from edge.detect.bursts import BurstParams, Detection
from edge.detect.detector import Scorer, StreamingDetector
from edge.detect.runtime import TfliteModel
from edge.dsp.onset import GateParams

log = logging.getLogger(__name__)

DetectionHandler = Callable[[Detection], None]


@dataclass
class RunSummary:
    seconds: float = 0.0
    candidates: int = 0
    detections: list[Detection] = field(default_factory=list)
    """Final detections, in order."""


class Unit:
    """One pole unit: audio source → streaming detector → detection handlers."""

    def __init__(
        self,
        config: Config,
        *,
        source: AudioSource | None = None,
        scorer: Scorer | None = None,
        handlers: list[DetectionHandler] | None = None,
    ) -> None:
        self.config = config
        self._source = source
        self._scorer = scorer
        self.handlers = list(handlers or [])
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self._stopping = threading.Event()
        self.detector: StreamingDetector | None = None
        self.model: TfliteModel | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Model first (a broken model must fail before the microphone is opened), then detector, then audio."""
        started = False
        try:
            self._start_detector()
            self._start_source()
            started = True
        finally:
            if not started:
                self.stop()

    def stop(self) -> None:
        """Idempotent; safe to call from a signal handler thread."""
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
        if self.detector is None or self._source is None:
            self.start()
        assert self.detector is not None and self._source is not None
        summary = RunSummary()
        detector = self.detector
        for det in detector.run(self._until_stopped(self._source.chunks())):
            if det.phase == "final":
                summary.detections.append(det)
            for handler in self.handlers:
                handler(det)
        summary.seconds = detector.stats.samples / detector.front_end.sample_rate
        summary.candidates = detector.stats.candidates
        return summary

    # -- parts -----------------------------------------------------------------------------------------------
    def _start_detector(self) -> None:
        cfg = self.config.detect
        if self._scorer is None:
            self.model = TfliteModel(Path(cfg.model) if cfg.model else None, threads=cfg.num_threads)
            self._scorer = self.model
        threshold = cfg.threshold or (self.model.info.threshold if self.model else 0.5)
        self.detector = StreamingDetector(
            self._scorer,
            threshold,
            gate=GateParams(rise_db=cfg.gate_rise_db, min_dbfs=cfg.gate_min_dbfs),
            bursts=BurstParams(gap_s=cfg.burst_gap_s),
            ring_seconds=self.config.audio.ring_seconds,
        )
        log.info("detector ready: threshold %.3f, burst gap %.1f s", threshold, cfg.burst_gap_s)

    def _start_source(self) -> None:
        if self._source is None:
            from edge.audio.factory import open_source

            audio = self.config.audio
            self._source = open_source(
                audio.source,
                device=audio.device,
                device_rate=audio.device_rate,
                chunk_ms=audio.chunk_ms,
                file=audio.file,
                realtime=audio.realtime,
                loop=audio.loop,
                reopen_interval_s=audio.reopen_interval_s,
            )
        source = self._source
        self._stops.append(("audio source", source.close))
        log.info("audio source %s open", source.name)

    def _until_stopped(self, chunks: Iterator[Int16Array]) -> Iterator[Int16Array]:
        for chunk in chunks:
            yield chunk
            if self._stopping.is_set():
                return
