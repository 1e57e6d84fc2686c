"""One recording through the full streaming pipeline, as fast as possible (``detect``, ``evaluate``, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.audio.file_source import FileSource
from edge.detect.bursts import Detection
from edge.detect.detector import Scorer, SecondLook, StreamingDetector
from edge.detect.params import DetectorParams
from edge.dsp.logmel import FrontEndParams


@dataclass(frozen=True)
class FileScan:
    detections: tuple[Detection, ...]
    """Final detections at the threshold, in order."""
    max_score: float
    """Highest score of any impulse in the file, after the texture check (0 when the gate found none)."""
    seconds: float
    impulses: tuple[tuple[float, float], ...] = ()
    """(onset in seconds from the file's start, score) of every classified gate candidate, in onset order."""
    texture_capped: int = 0
    """Candidates the texture check kept from opening a detection (:mod:`edge.detect.texture`)."""


def scan_file(
    path: Path,
    scorer: Scorer,
    threshold: float,
    params: DetectorParams | None = None,
    front_end: FrontEndParams | None = None,
    second_look: SecondLook | None = None,
) -> FileScan:
    """Raises :class:`edge.errors.AudioError` when the file cannot be read. ``params``: a unit's defaults unless
    given (:meth:`DetectorParams.from_config` for a configured unit's)."""
    params = params or DetectorParams()
    detector = StreamingDetector(
        scorer,
        threshold,
        gate=params.gate,
        front_end=front_end,
        bursts=params.bursts,
        keep_scores=True,
        second_look=second_look,
        texture=params.texture,
    )
    with FileSource(path, chunk_samples=16_000) as source:
        finals = tuple(d for d in detector.run(source.chunks()) if d.phase == "final")
    rate = detector.front_end.sample_rate
    impulses = tuple((onset / rate, score) for onset, score in detector.take_scored())
    return FileScan(finals, detector.stats.max_score, detector.stats.samples / rate, impulses, detector.texture.capped)
