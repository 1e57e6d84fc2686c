"""Sample index → UTC, with an uncertainty that never claims better time than the unit has (DESIGN.md section 2).

Two mappings are chained:

1. **sample index → monotonic clock.** Every time a chunk arrives, :meth:`Timebase.observe` records the index one
   past its last sample and the ``CLOCK_MONOTONIC`` time it was seen. Arrival is always *late* (driver buffers,
   scheduling, queues), never early, so per bucket of about a second only the least-delayed arrival is kept (a
   lower envelope), and a straight line is fitted through those points by least squares with one outlier-trimming
   pass. The slope is the device's real sample rate (a "16 kHz" USB microphone is often a few tens of ppm off); it
   is clamped to ±1 % of nominal. A jump that persists (device reconnected, indices rebased) restarts the fit.
2. **monotonic → UTC.** ``CLOCK_REALTIME - CLOCK_MONOTONIC``, sampled together when a time is asked for. Both clocks
   are slewed alike by chrony, so the difference only changes when the clock is *stepped*.

What the system clock is worth comes from a :class:`ClockState`: :class:`KernelClockState` reads the kernel's NTP
state with ``adjtimex(2)`` (read-only) and, optionally, a :class:`ChronyTracking` hint that names the reference (PPS
or a GPS refclock), because chrony disciplines PPS in user space and the kernel's own PPS bits stay clear.

The uncertainty of :meth:`Timebase.utc_of` is the sum of the clock's error estimate, the fit's spread at that index
and the capture-latency calibration (:class:`LatencyCalibration`), which is the part no fit can see: how long before
a chunk is seen its last sample really left the ADC. Uncalibrated, that is several milliseconds and says so. With an
unsynchronised clock the uncertainty is ``None`` (unknown): a Pi without a real-time clock can be off by days, so any
number would be a claim the unit cannot back.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.audio.source import SAMPLE_RATE
from edge.clock import NS_PER_S, ClockReading, ClockState, OnsetTime
from edge.errors import PolewatchError

log = logging.getLogger(__name__)


class TimebaseNotReadyError(PolewatchError, RuntimeError):
    """A time was asked for before any audio chunk was observed."""


# -- sample index → monotonic → UTC ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyCalibration:
    """Time from the ADC sampling a chunk's last sample to :meth:`Timebase.observe` seeing the chunk (at best).

    The fit follows the least-delayed arrivals, so what remains is the fixed part: the device's and driver's buffer
    latency and any resampling filter delay. ``mean_us`` is subtracted; ``uncertainty_us`` is added to every
    uncertainty. Uncalibrated (the default) the mean is unknown: 0 ± 10 ms, which covers a typical USB microphone.
    """

    mean_us: float = 0.0
    uncertainty_us: float = 10_000.0

    def __post_init__(self) -> None:
        if self.uncertainty_us < 0 or not math.isfinite(self.mean_us + self.uncertainty_us):
            raise ValueError(f"latency calibration must be finite with uncertainty ≥ 0, got {self}")


@dataclass(frozen=True)
class TimeFit:
    """The current sample index → monotonic fit: ``monotonic_ns(index)`` is a straight line."""

    sample_rate_hz: float
    """The device's real rate in the sample-index domain, measured against the monotonic clock."""
    measured: bool
    """False while the points span too little time to measure the rate: the nominal rate is used."""
    clamped: bool
    """The measured rate was further off nominal than allowed and was clamped."""
    residual_us: float
    """RMS distance of the fitted points from the line."""
    points: int
    """Buckets (about a second each) the fit used."""
    span_s: float
    """Time between the first and the last point."""
    origin_index: int
    origin_ns: int
    intercept_ns: float
    ns_per_sample: float
    mean_x: float
    """Mean of the points' indices relative to ``origin_index``: where the line is most precise."""
    slope_se_ns: float
    """Standard error of ``ns_per_sample`` (the allowed rate error when not measured)."""

    def monotonic_ns(self, index: float) -> float:
        return self.origin_ns + self.intercept_ns + self.ns_per_sample * (index - self.origin_index)

    def spread_us(self, index: float, coverage: float = 2.0) -> float:
        """The fit's own uncertainty at ``index``: ``coverage`` × (point spread ⊕ slope error at that distance).

        The points are lower-envelope minima, whose excess delay over the true latency is about as large as their
        spread; a coverage of 2 keeps that bias inside the uncertainty.
        """
        lever_us = abs(index - self.origin_index - self.mean_x) * self.slope_se_ns / 1000.0
        return coverage * math.hypot(self.residual_us, lever_us)


def _realtime_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def _monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@dataclass(frozen=True)
class _Line:
    ns_per_sample: float
    intercept_ns: float
    measured: bool
    clamped: bool


class Timebase:
    """Maps absolute sample indices to UTC; see the module docstring.

    ``observe`` is O(1) and allocation-free in the common case; the fit is computed when a time is asked for, and
    every ``refit_every`` buckets to watch for jumps. A jump is a run of buckets far (> ``jump_ms``) off the line:
    ``early_buckets`` in a row early (impossible for mere delay) or ``late_buckets`` in a row late (longer than a
    consumer backlog can last) restart the fit from those buckets. Call :meth:`restart` when the source reports lost
    samples. Not thread-safe: use it from the thread that consumes audio.
    """

    def __init__(
        self,
        clock_state: ClockState,
        *,
        nominal_rate: float = SAMPLE_RATE,
        latency: LatencyCalibration | None = None,
        bucket_s: float = 1.0,
        window_s: float = 600.0,
        max_rate_error: float = 0.01,
        min_rate_span_s: float = 5.0,
        jump_ms: float = 50.0,
        early_buckets: int = 3,
        late_buckets: int = 10,
        refit_every: int = 10,
        fit_coverage: float = 2.0,
        monotonic_ns: Callable[[], int] = _monotonic_ns,
        realtime_ns: Callable[[], int] = _realtime_ns,
    ) -> None:
        if nominal_rate <= 0 or bucket_s <= 0 or window_s < 2 * bucket_s or not 0 < max_rate_error < 0.5:
            raise ValueError("timebase needs nominal_rate > 0, 0 < 2 bucket_s ≤ window_s, 0 < max_rate_error < 0.5")
        self.clock_state = clock_state
        self.nominal_rate = float(nominal_rate)
        self.latency = latency or LatencyCalibration()
        self._nominal_ns = NS_PER_S / self.nominal_rate
        self._bucket_samples = max(1, round(bucket_s * nominal_rate))
        self._window_buckets = math.ceil(window_s / bucket_s)
        self._max_rate_error = max_rate_error
        self._min_rate_span_ns = min_rate_span_s * NS_PER_S
        self._jump_ns = jump_ms * 1e6
        self._early_buckets = early_buckets
        self._late_buckets = late_buckets
        self._refit_every = refit_every
        self._fit_coverage = fit_coverage
        self._monotonic_ns = monotonic_ns
        self._realtime_ns = realtime_ns
        self._last_index: int | None = None
        self.restarts = 0
        """Times the fit was restarted (index went back, a jump, or :meth:`restart`)."""
        self._clear()

    def _clear(self) -> None:
        self._origin: tuple[int, int] | None = None
        """(index, monotonic ns) of the first point; points are kept relative to it, as floats."""
        self._buckets: deque[tuple[float, float]] = deque(maxlen=self._window_buckets)
        self._bucket_id: int | None = None
        self._best: tuple[float, float, float] | None = None
        """(delay proxy, x, y) of the least-delayed arrival in the open bucket."""
        self._pending: list[tuple[int, int, float]] = []
        """Recent buckets far off the line: (index, monotonic ns, offset ns)."""
        self._fit: TimeFit | None = None
        self._fit_fresh = False
        self._buckets_since_fit = 0
        self._ns_per_sample = self._nominal_ns

    def restart(self) -> None:
        """Forget every observation (the source lost samples or was reopened)."""
        self.restarts += 1
        self._clear()

    # -- observations ----------------------------------------------------------------------------------------
    def observe(self, end_index: int, monotonic_ns: int | None = None) -> None:
        """A chunk ending just before sample ``end_index`` arrived at ``monotonic_ns`` (default: now)."""
        t_ns = self._monotonic_ns() if monotonic_ns is None else monotonic_ns
        if self._last_index is not None and end_index <= self._last_index:
            log.warning("sample index went back from %d to %d: timebase restarted", self._last_index, end_index)
            self.restart()
        self._last_index = end_index
        bucket = end_index // self._bucket_samples
        if bucket != self._bucket_id:
            self._close_bucket()
            self._bucket_id = bucket
        if self._origin is None:
            self._origin = (end_index, t_ns)
        x = float(end_index - self._origin[0])
        y = float(t_ns - self._origin[1])
        delay = y - x * self._ns_per_sample
        if self._best is None or delay < self._best[0]:
            self._best = (delay, x, y)
        self._fit_fresh = False

    def _close_bucket(self) -> None:
        if self._best is None:
            return
        _, x, y = self._best
        self._best = None
        off_ns = self._offset_from_line(x, y)
        if off_ns is None or abs(off_ns) <= self._jump_ns:
            self._pending.clear()
            self._buckets.append((x, y))
            self._buckets_since_fit += 1
            return
        assert self._origin is not None
        if self._pending and (off_ns > 0) != (self._pending[-1][2] > 0):
            self._pending.clear()
        self._pending.append((self._origin[0] + round(x), self._origin[1] + round(y), off_ns))
        if len(self._pending) >= (self._late_buckets if off_ns > 0 else self._early_buckets):
            self._restart_from_pending()

    def _offset_from_line(self, x: float, y: float) -> float | None:
        """How far a point sits off the current line (ns, positive = late); None before the rate is measured."""
        if self._fit is None or not self._fit.measured or self._buckets_since_fit >= self._refit_every:
            self._fit = self._compute_fit()
            self._buckets_since_fit = 0
        fit = self._fit
        if fit is None or not fit.measured:
            return None
        return y - (fit.intercept_ns + fit.ns_per_sample * x)

    def _restart_from_pending(self) -> None:
        pending = self._pending
        log.warning(
            "audio timing jumped by %+.1f ms for %d s (lost samples or device reopened): timebase restarted",
            pending[-1][2] / 1e6,
            len(pending),
        )
        self.restart()
        index0, t0, _ = pending[0]
        self._origin = (index0, t0)
        self._buckets.extend((float(index - index0), float(t_ns - t0)) for index, t_ns, _ in pending)

    # -- fit -------------------------------------------------------------------------------------------------
    def _line(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> _Line:
        measured = x.size >= 3 and float(y.max() - y.min()) >= self._min_rate_span_ns
        slope = self._nominal_ns
        if measured:
            dx = x - x.mean()
            slope = float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))
        low, high = self._nominal_ns / (1 + self._max_rate_error), self._nominal_ns / (1 - self._max_rate_error)
        clamped = not low <= slope <= high
        slope = min(max(slope, low), high)
        return _Line(slope, float(np.mean(y - slope * x)), measured, clamped)

    def _compute_fit(self) -> TimeFit | None:
        pts = list(self._buckets)
        if self._best is not None:
            pts.append((self._best[1], self._best[2]))
        if self._origin is None or not pts:
            return None
        arr = np.asarray(pts, dtype=np.float64)
        x, y = arr[:, 0], arr[:, 1]
        line = self._line(x, y)
        residuals = y - line.ns_per_sample * x - line.intercept_ns
        mad = float(np.median(np.abs(residuals - np.median(residuals))))
        keep = np.abs(residuals) <= max(5.0 * 1.4826 * mad, 50_000.0)  # never trim below 50 µs of honest jitter
        if 2 <= int(keep.sum()) < x.size:
            x, y = x[keep], y[keep]
            line = self._line(x, y)
            residuals = y - line.ns_per_sample * x - line.intercept_ns
        dx = x - x.mean()
        sxx = float(np.dot(dx, dx))
        if line.measured and sxx > 0:
            slope_se = math.sqrt(float(np.dot(residuals, residuals)) / (x.size - 2) / sxx)
        else:
            slope_se = self._nominal_ns * self._max_rate_error
        if line.clamped and (self._fit is None or not self._fit.clamped):
            log.warning(
                "audio device runs at %.1f Hz by the monotonic clock, beyond ±%.1f %% of nominal: rate clamped",
                NS_PER_S / line.ns_per_sample,
                100 * self._max_rate_error,
            )
        self._ns_per_sample = line.ns_per_sample
        return TimeFit(
            sample_rate_hz=NS_PER_S / line.ns_per_sample,
            measured=line.measured,
            clamped=line.clamped,
            residual_us=float(np.sqrt(np.mean(residuals**2))) / 1000.0,
            points=int(x.size),
            span_s=float(y.max() - y.min()) / NS_PER_S,
            origin_index=self._origin[0],
            origin_ns=self._origin[1],
            intercept_ns=line.intercept_ns,
            ns_per_sample=line.ns_per_sample,
            mean_x=float(x.mean()),
            slope_se_ns=slope_se,
        )

    def fit(self) -> TimeFit | None:
        """The fit over the observations so far (None before the first)."""
        if not self._fit_fresh:
            self._fit = self._compute_fit()
            self._fit_fresh = True
            self._buckets_since_fit = 0
        return self._fit

    # -- queries ---------------------------------------------------------------------------------------------
    def realtime_offset_ns(self) -> int:
        """``CLOCK_REALTIME - CLOCK_MONOTONIC``, from the tightest of three bracketed readings."""
        best: tuple[int, int] | None = None
        for _ in range(3):
            before = self._monotonic_ns()
            real = self._realtime_ns()
            after = self._monotonic_ns()
            if best is None or after - before < best[0]:
                best = (after - before, real - (before + after) // 2)
        assert best is not None
        return best[1]

    def monotonic_of(self, index: float) -> float:
        """When sample ``index`` was captured, in monotonic ns (latency calibration applied)."""
        fit = self.fit()
        if fit is None:
            raise TimebaseNotReadyError("no audio chunk has been observed yet, so sample indices have no time")
        return fit.monotonic_ns(index) - self.latency.mean_us * 1000.0

    def uncertainty_us(self, index: float, clock: ClockReading) -> float | None:
        """Everything that may be wrong with the time of ``index``: clock + fit + latency (+ an unresolved jump).

        None (unknown) when the clock's own error is unknown.
        """
        fit = self.fit()
        if fit is None:
            raise TimebaseNotReadyError("no audio chunk has been observed yet, so sample indices have no time")
        if clock.uncertainty_us is None:
            return None
        unresolved_us = max((abs(off) for _, _, off in self._pending), default=0.0) / 1000.0
        fit_us = fit.spread_us(index, self._fit_coverage)
        return clock.uncertainty_us + fit_us + self.latency.uncertainty_us + unresolved_us

    def utc_of(self, index: float) -> OnsetTime:
        """UTC of sample ``index`` (fractional indices allowed), with the time source and an honest uncertainty."""
        mono_ns = self.monotonic_of(index)
        clock = self.clock_state.read()
        utc_ns = round(mono_ns) + self.realtime_offset_ns()
        return OnsetTime(utc_ns, clock.source, self.uncertainty_us(index, clock))

    def clock(self) -> ClockReading:
        """The system clock's quality now (for health and status)."""
        return self.clock_state.read()
