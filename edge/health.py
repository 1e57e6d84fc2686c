"""The unit's own health: microphone level, disk, temperature, clock, outbox → the ``health`` message and the
``reasons`` of a ``degraded`` status (DESIGN.md section 4).

:class:`MicLevel` watches the same int16 chunks the detector sees, at a few microseconds per second of audio.
:class:`HealthSnapshot` holds one reading of everything and turns it into the message dict; :func:`status_reasons`
turns it into short stable codes (:data:`REASONS` has their text).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio.source import SAMPLE_RATE, Int16Array, SourceStats
from edge.clock import ClockReading, iso_utc

log = logging.getLogger(__name__)

HEALTH_SCHEMA = "polewatch/health/1"
FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0
"""Level reported for digital silence (the log of zero), and the floor of every level."""


# -- microphone --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MicReading:
    rms_dbfs: float | None
    """RMS of the last complete second, dB relative to full scale (a full-scale sine reads -3 dBFS)."""
    noise_floor_dbfs: float | None
    """A low percentile of the per-second levels over the floor window: the quiet background."""
    clipping_ratio: float
    """Fraction of samples at full scale over the clip window."""
    quiet_s: float
    """Seconds in a row below the quiet level (or digitally silent)."""
    seconds: int
    """Complete seconds measured so far."""


class MicLevel:
    """Streaming level meter over exact one-second blocks, so any chunking gives the same readings."""

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        *,
        quiet_dbfs: float = -90.0,
        floor_percentile: float = 10.0,
        floor_window_s: int = 600,
        clip_window_s: int = 60,
        clip_level: int = 32767,
    ) -> None:
        if sample_rate <= 0 or not 0 <= floor_percentile <= 100 or floor_window_s < 1 or clip_window_s < 1:
            raise ValueError("MicLevel needs sample_rate > 0, 0 ≤ floor_percentile ≤ 100 and windows ≥ 1 s")
        if not 0 < clip_level <= 32767:
            raise ValueError(f"clip_level must be in 1..32767, got {clip_level}")
        self.sample_rate = sample_rate
        self.quiet_dbfs = quiet_dbfs
        self.floor_percentile = floor_percentile
        self._clip_high = clip_level
        self._clip_low = -clip_level
        self._levels: deque[float] = deque(maxlen=floor_window_s)
        self._clips: deque[int] = deque(maxlen=clip_window_s)
        self._sumsq = 0.0
        self._clipped = 0
        self._filled = 0
        self._quiet_s = 0
        self._seconds = 0

    def update(self, chunk: Int16Array) -> None:
        pos, n = 0, int(chunk.shape[0])
        while pos < n:
            take = min(n - pos, self.sample_rate - self._filled)
            part = chunk[pos : pos + take]
            as_float = part.astype(np.float64)
            self._sumsq += float(np.dot(as_float, as_float))
            self._clipped += int(np.count_nonzero((part >= self._clip_high) | (part <= self._clip_low)))
            self._filled += take
            pos += take
            if self._filled == self.sample_rate:
                self._close_second()

    def _close_second(self) -> None:
        mean_square = self._sumsq / (self.sample_rate * FULL_SCALE * FULL_SCALE)
        level = max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS
        self._levels.append(level)
        self._clips.append(self._clipped)
        self._quiet_s = self._quiet_s + 1 if level < self.quiet_dbfs else 0
        self._seconds += 1
        self._sumsq, self._clipped, self._filled = 0.0, 0, 0

    def reading(self) -> MicReading:
        if not self._levels:
            return MicReading(None, None, 0.0, 0.0, 0)
        floor = float(np.percentile(np.fromiter(self._levels, dtype=np.float64), self.floor_percentile))
        clipping = sum(self._clips) / (len(self._clips) * self.sample_rate)
        return MicReading(self._levels[-1], floor, clipping, float(self._quiet_s), self._seconds)


# -- host ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    free_bytes: int
    """Bytes an unprivileged process can still write."""
    total_bytes: int

    @property
    def used_fraction(self) -> float:
        return 1.0 - self.free_bytes / self.total_bytes if self.total_bytes > 0 else 1.0


def disk_usage(path: str | Path) -> DiskUsage:
    """Usage of the file system holding ``path``; raises :class:`OSError` when it cannot be read."""
    usage = shutil.disk_usage(path)
    return DiskUsage(free_bytes=int(usage.free), total_bytes=int(usage.total))


THERMAL_ROOT = Path("/sys/class/thermal")
_CPU_ZONE_TYPES = ("cpu", "soc", "x86_pkg")


def cpu_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    """CPU temperature from ``thermal_zone*/temp`` (millidegrees), preferring a zone typed cpu/soc; None if absent."""
    readings: list[tuple[bool, str, float]] = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            millidegrees = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            kind = (zone / "type").read_text().strip().lower()
        except OSError:
            kind = ""
        is_cpu = kind.startswith(_CPU_ZONE_TYPES)
        readings.append((not is_cpu, zone.name, millidegrees / 1000.0))
    if not readings:
        return None
    return min(readings)[2]


# -- snapshot ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpsReading:
    fix: str = "none"
    """``none``, ``2d`` or ``3d`` (gpsd's mode); ``none`` also when there is no receiver or it was not read."""
    satellites: int | None = None
    """Satellites used in the fix; None when unknown (left out of the message)."""


@dataclass(frozen=True)
class OutboxState:
    depth: int = 0
    """Messages waiting for a PUBACK."""
    oldest_s: float | None = None
    """Age of the oldest waiting message; None when the outbox is empty."""


@dataclass(frozen=True)
class HealthSnapshot:
    """One reading of everything; :meth:`as_message` is the ``health`` payload (before signing)."""

    unit_id: str
    ts_ns: int
    """UTC, nanoseconds since the epoch."""
    uptime_s: float
    mic: MicReading
    overflows: int
    """Times the audio device lost samples (from the source's counters)."""
    clock: ClockReading
    disk: DiskUsage | None
    """None when the data partition could not be read (the message then says 0 bytes free, all used)."""
    temperature_c: float | None
    outbox: OutboxState = field(default_factory=OutboxState)
    gps: GpsReading = field(default_factory=GpsReading)

    def as_message(self) -> dict[str, Any]:
        gps: dict[str, Any] = {"fix": self.gps.fix}
        if self.gps.satellites is not None:
            gps["satellites"] = self.gps.satellites
        return {
            "schema": HEALTH_SCHEMA,
            "unit_id": self.unit_id,
            "ts": iso_utc(self.ts_ns),
            "uptime_s": round(self.uptime_s, 1),
            "mic": {
                "rms_dbfs": _round(self.mic.rms_dbfs, 1),
                "noise_floor_dbfs": _round(self.mic.noise_floor_dbfs, 1),
                "clipping_ratio": round(self.mic.clipping_ratio, 6),
                "overflows": self.overflows,
            },
            "gps": gps,
            "clock": {
                "source": self.clock.source,
                "synchronized": self.clock.synchronized,
                "uncertainty_us": _round(self.clock.uncertainty_us, 1),
            },
            "disk": {  # unreadable reads as full: the pessimistic answer a technician will look into
                "free_bytes": self.disk.free_bytes if self.disk else 0,
                "used_fraction": round(self.disk.used_fraction, 4) if self.disk else 1.0,
            },
            "temperature_c": _round(self.temperature_c, 1),
            "outbox": {"depth": self.outbox.depth, "oldest_s": _round(self.outbox.oldest_s, 1)},
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def collect_health(
    *,
    unit_id: str,
    mic: MicLevel,
    source_stats: SourceStats,
    clock: Callable[[], ClockReading],
    data_path: str | Path,
    started_monotonic: float,
    outbox: OutboxState | None = None,
    gps: GpsReading | None = None,
    now_ns: Callable[[], int] = time.time_ns,
    monotonic: Callable[[], float] = time.monotonic,
    temperature: Callable[[], float | None] = cpu_temperature_c,
) -> HealthSnapshot:
    """Read every part now. ``clock`` is e.g. ``timebase.clock``; ``started_monotonic`` is when the unit started."""
    try:
        disk: DiskUsage | None = disk_usage(data_path)
    except OSError as exc:
        log.warning("cannot read disk usage of %s: %s", data_path, exc)
        disk = None
    return HealthSnapshot(
        unit_id=unit_id,
        ts_ns=now_ns(),
        uptime_s=max(0.0, monotonic() - started_monotonic),
        mic=mic.reading(),
        overflows=source_stats.overflows,
        clock=clock(),
        disk=disk,
        temperature_c=temperature(),
        outbox=outbox or OutboxState(),
        gps=gps or GpsReading(),
    )


# -- degraded reasons --------------------------------------------------------------------------------------------

REASONS: dict[str, str] = {
    "no-mic-signal": "the microphone delivers silence or almost nothing",
    "mic-clipping": "the microphone clips often: gain too high or the capsule is damaged",
    "clock-unsynchronised": "the system clock is not synchronised: event times are not trustworthy",
    "no-gps": "GPS is expected but has no fix",
    "disk-low": "the data partition is nearly full or cannot be read",
    "camera-failed": "the camera failed",
    "outbox-backlog": "messages are piling up in the outbox: the broker is unreachable or slow",
}
"""Every code :func:`status_reasons` can return, with its text for people. Codes are stable; texts may change."""


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    """What is wrong, with the numbers behind it."""


@dataclass(frozen=True)
class HealthLimits:
    quiet_s: float = 30.0
    """Seconds of silence (below :attr:`MicLevel.quiet_dbfs`) before ``no-mic-signal``."""
    clipping_ratio: float = 0.01
    """Clipped fraction of samples over the clip window for ``mic-clipping`` (a close gunshot alone stays below)."""
    disk_min_free_fraction: float = 0.10
    disk_min_free_bytes: int = 200_000_000
    outbox_max_depth: int = 100
    outbox_max_age_s: float = 300.0


def degraded_reasons(
    snapshot: HealthSnapshot,
    *,
    gps_expected: bool = False,
    camera_failed: bool = False,
    limits: HealthLimits | None = None,
) -> list[Reason]:
    """Why the unit is degraded, in the order of :data:`REASONS`; empty when all is well."""
    lim = limits or HealthLimits()
    found: list[Reason] = []

    def add(code: str, detail: str) -> None:
        found.append(Reason(code, f"{REASONS[code]} ({detail})"))

    mic = snapshot.mic
    if mic.quiet_s > lim.quiet_s:
        last = SILENCE_DBFS if mic.rms_dbfs is None else mic.rms_dbfs
        add("no-mic-signal", f"below the quiet level for {mic.quiet_s:.0f} s, last second {last:.1f} dBFS")
    if mic.clipping_ratio > lim.clipping_ratio:
        add("mic-clipping", f"{100 * mic.clipping_ratio:.2f} % of samples at full scale")
    if not snapshot.clock.synchronized:
        add("clock-unsynchronised", f"time source {snapshot.clock.source}")
    if gps_expected and snapshot.gps.fix not in ("2d", "3d"):
        add("no-gps", f"fix {snapshot.gps.fix}")
    disk = snapshot.disk
    if disk is None:
        add("disk-low", "its usage cannot be read")
    elif disk.free_bytes < lim.disk_min_free_bytes or disk.free_bytes < lim.disk_min_free_fraction * disk.total_bytes:
        add("disk-low", f"{disk.free_bytes / 1e6:.0f} MB free, {100 * disk.used_fraction:.1f} % used")
    if camera_failed:
        add("camera-failed", "see the log")
    outbox = snapshot.outbox
    if outbox.depth > lim.outbox_max_depth or (outbox.oldest_s or 0.0) > lim.outbox_max_age_s:
        add("outbox-backlog", f"{outbox.depth} waiting, oldest {outbox.oldest_s or 0.0:.0f} s")
    return found


def status_reasons(
    snapshot: HealthSnapshot,
    *,
    gps_expected: bool = False,
    camera_failed: bool = False,
    limits: HealthLimits | None = None,
) -> list[str]:
    """The codes for the status message's ``reasons`` (empty = ``online``, otherwise ``degraded``)."""
    reasons = degraded_reasons(snapshot, gps_expected=gps_expected, camera_failed=camera_failed, limits=limits)
    return [reason.code for reason in reasons]
