"""Groups classified impulses into detections and counts rounds.

Gunshot impulses closer than ``gap_s`` to the previous one belong to the same burst. The first one opens a
detection (phase ``new``, sent at once); the burst closes (phase ``final``, with every round) once the stream is
known to hold no further gunshot impulse within ``gap_s`` of the last.

Rounds after the first count at a lower score (``round_score``): once a burst is open, an impulse that the
classifier rates as more likely a gunshot than not is taken as the next round, since full-auto rounds heard
through the echoes of the previous ones score lower than a round on its own. What cannot be a round is an echo:
an impulse closer than ``min_interval_s`` to the last round (no firearm in the field fires faster than about
20 rounds/s), or one much quieter than a round shortly before it (``echo_window_s``, ``echo_drop_db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Phase = Literal["new", "final"]


@dataclass(frozen=True)
class Impulse:
    onset: int
    """Absolute sample index."""
    score: float
    peak_dbfs: float


@dataclass(frozen=True)
class Detection:
    number: int
    """Counts detections of one stream from 1; the same number for the ``new`` and ``final`` message."""
    phase: Phase
    impulses: tuple[Impulse, ...]

    @property
    def onset(self) -> int:
        return self.impulses[0].onset

    @property
    def rounds(self) -> int:
        return len(self.impulses)

    @property
    def score(self) -> float:
        return max(i.score for i in self.impulses)


@dataclass(frozen=True)
class BurstParams:
    gap_s: float = 2.0
    round_score: float = 0.5
    min_interval_s: float = 0.045
    echo_window_s: float = 1.0
    echo_drop_db: float = 12.0
    sample_rate: int = 16_000


@dataclass
class _Open:
    number: int
    impulses: list[Impulse] = field(default_factory=list)


class BurstTracker:
    """Feed gunshot impulses in onset order with :meth:`add`; call :meth:`advance` as the stream moves on."""

    def __init__(self, params: BurstParams | None = None) -> None:
        self.params = params or BurstParams()
        self._gap = round(self.params.gap_s * self.params.sample_rate)
        self._echo = round(self.params.echo_window_s * self.params.sample_rate)
        self._min_interval = round(self.params.min_interval_s * self.params.sample_rate)
        self._open: _Open | None = None
        self._count = 0
        self.echoes = 0

    @property
    def is_open(self) -> bool:
        return self._open is not None

    def continues(self, onset: int) -> bool:
        """Whether an impulse at ``onset`` (no earlier than the last one added) would join the open burst; it
        then counts as a round at ``round_score``. Depends on onsets only, so on no chunking."""
        return self._open is not None and onset - self._open.impulses[-1].onset <= self._gap

    def add(self, impulse: Impulse) -> list[Detection]:
        out = self.advance(impulse.onset)
        if self._open is None:
            self._count += 1
            self._open = _Open(self._count, [impulse])
            out.append(Detection(self._count, "new", (impulse,)))
            return out
        if self._is_echo(impulse, self._open.impulses):
            self.echoes += 1
            return out
        self._open.impulses.append(impulse)
        return out

    def advance(self, horizon: int) -> list[Detection]:
        """No gunshot impulse with an onset before ``horizon`` will arrive any more."""
        if self._open is not None and horizon - self._open.impulses[-1].onset > self._gap:
            return [self._close()]
        return []

    def flush(self) -> list[Detection]:
        return [self._close()] if self._open is not None else []

    def _close(self) -> Detection:
        assert self._open is not None
        done = Detection(self._open.number, "final", tuple(self._open.impulses))
        self._open = None
        return done

    def _is_echo(self, impulse: Impulse, rounds: list[Impulse]) -> bool:
        if impulse.onset - rounds[-1].onset < self._min_interval:
            return True
        recent = [r for r in rounds if impulse.onset - r.onset <= self._echo]
        return any(impulse.peak_dbfs < r.peak_dbfs - self.params.echo_drop_db for r in recent)
