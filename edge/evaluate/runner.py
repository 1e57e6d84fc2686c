"""Every file of a manifest through the real streaming pipeline (file replay → gate → classifier → bursts)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.detect.bursts import Detection
from edge.detect.detector import Scorer, SecondLook
from edge.detect.params import DetectorParams
from edge.detect.scan import scan_file
from edge.dsp.logmel import FrontEndParams
from edge.errors import AudioError
from edge.evaluate.manifest import ManifestRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileResult:
    row: ManifestRow
    gun_max: float
    """Highest classifier score of any impulse in the file (0 when the gate found none)."""
    detections: tuple[Detection, ...] = ()
    """Final detections at the threshold."""
    seconds: float = 0.0
    error: str = ""
    """Why the file could not be scored (missing, unreadable); such files count as missing, not as scores."""
    impulses: tuple[tuple[float, float], ...] = ()
    """(onset s, score) of every classified gate candidate (:attr:`edge.detect.scan.FileScan.impulses`)."""

    @property
    def ok(self) -> bool:
        return not self.error


def run_file(
    row: ManifestRow,
    root: Path,
    scorer: Scorer,
    threshold: float,
    params: DetectorParams | None = None,
    front_end: FrontEndParams | None = None,
    second_look: SecondLook | None = None,
) -> FileResult:
    path = Path(row.path) if Path(row.path).is_absolute() else root / row.path
    try:
        scan = scan_file(path, scorer, threshold, params, front_end, second_look)
    except AudioError as exc:
        return FileResult(row, 0.0, error=str(exc))
    return FileResult(row, scan.max_score, scan.detections, scan.seconds, impulses=scan.impulses)


@dataclass
class Progress:
    """Progress on stderr without tqdm: redrawn once a second on a terminal, a line per 10 % in a log."""

    total: int
    done: int = 0
    missing: int = 0
    started: float = field(default_factory=time.monotonic)
    _shown: float = 0.0
    _tenths: int = 0

    def step(self, result: FileResult) -> None:
        self.done += 1
        self.missing += not result.ok
        now, tty = time.monotonic(), sys.stderr.isatty()
        tenths = 10 * self.done // self.total
        due = now - self._shown >= 1.0 if tty else tenths > self._tenths
        if not (due or self.done == self.total):
            return
        self._shown, self._tenths = now, tenths
        rate = self.done / max(now - self.started, 1e-9)
        line = (
            f"evaluate: {self.done}/{self.total} files ({100 * self.done / self.total:.0f} %), "
            f"{self.missing} missing, ~{(self.total - self.done) / rate:.0f} s left"
        )
        end = "\n" if self.done == self.total or not tty else ""
        sys.stderr.write(("\r" if tty else "") + line + end)
        sys.stderr.flush()


def evaluate_files(
    rows: Iterable[ManifestRow],
    root: Path,
    scorer: Scorer,
    threshold: float,
    *,
    params: DetectorParams | None = None,
    front_end: FrontEndParams | None = None,
    second_look: SecondLook | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    """``params``: gate, burst and texture rules (default: a unit's defaults); ``front_end``: the scorer's
    (default: the unit's, :class:`FrontEndParams`); ``second_look``: the model's."""
    for row in rows:
        result = run_file(row, root, scorer, threshold, params, front_end, second_look)
        if not result.ok:
            log.warning("%s", result.error)
        if on_result is not None:
            on_result(result)
        yield result
