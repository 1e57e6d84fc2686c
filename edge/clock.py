"""What the system clock is worth, and a moment in UTC with its uncertainty.

:class:`KernelClockState` reads the kernel's NTP state with ``adjtimex(2)`` (read-only) and, optionally, a
:class:`ChronyTracking` hint that names the reference (PPS or a GPS refclock), because chrony disciplines PPS in user
space and the kernel's own PPS bits stay clear. With an unsynchronised clock the uncertainty is ``None`` (unknown): a
Pi without a real-time clock can be off by days, so any number would be a claim the unit cannot back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

log = logging.getLogger(__name__)

TimeSource = Literal["gps-pps", "gps", "ntp", "none"]
TIME_SOURCES: tuple[TimeSource, ...] = ("gps-pps", "gps", "ntp", "none")
"""Best first. An event's ``time_source`` is one of these."""

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class OnsetTime:
    """A moment in UTC as the unit knows it."""

    utc_ns: int
    """Nanoseconds since the Unix epoch (UTC)."""
    source: str
    """One of :data:`TIME_SOURCES`: ``gps-pps``, ``gps``, ``ntp`` or ``none``."""
    uncertainty_us: float | None
    """How far off ``utc_ns`` may be, in microseconds; None (unknown) exactly when ``source`` is ``none``."""

    def __post_init__(self) -> None:
        if isinstance(self.utc_ns, bool) or not isinstance(self.utc_ns, int) or not 0 <= self.utc_ns < 2**63:
            raise ValueError(f"onset utc_ns {self.utc_ns!r} must be an integer in [0, 2**63)")
        _check_uncertainty(self.source, self.uncertainty_us)

    @property
    def iso(self) -> str:
        """ISO 8601 UTC with microseconds, e.g. ``2025-03-01T12:00:00.123456Z``."""
        return iso_utc(self.utc_ns)


def _check_uncertainty(source: str, uncertainty_us: float | None) -> None:
    if source not in TIME_SOURCES:
        raise ValueError(f"time source {source!r} must be one of {', '.join(TIME_SOURCES)}")
    if (source == "none") != (uncertainty_us is None):
        raise ValueError(
            f"uncertainty must be None exactly when the time source is 'none' ({source}, {uncertainty_us})"
        )
    if uncertainty_us is not None and not (math.isfinite(uncertainty_us) and uncertainty_us >= 0):
        raise ValueError(f"uncertainty must be a finite number of microseconds ≥ 0, got {uncertainty_us}")


def iso_utc(utc_ns: int) -> str:
    """ISO 8601 UTC with microseconds (truncated, so it never disagrees with ``utc_ns``) and a ``Z`` suffix."""
    if isinstance(utc_ns, bool) or not isinstance(utc_ns, int) or utc_ns < 0:
        raise ValueError(f"time {utc_ns!r} must be a non-negative integer count of nanoseconds")
    seconds, rest_ns = divmod(utc_ns, NS_PER_S)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest_ns // 1000:06d}Z"


# -- what the system clock is worth ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockReading:
    """The system clock's quality right now."""

    source: TimeSource
    synchronized: bool
    uncertainty_us: float | None
    """Error estimate of the system clock alone, in microseconds; None (unknown) when unsynchronised."""
    detail: str = ""
    """For logs and health: what the reading was based on."""

    def __post_init__(self) -> None:
        _check_uncertainty(self.source, self.uncertainty_us)
        if self.synchronized == (self.source == "none"):
            raise ValueError(f"a clock is synchronised exactly when its source is not 'none', got {self}")


class ClockState(Protocol):
    def read(self) -> ClockReading: ...


class FakeClockState:
    """A :class:`ClockState` for tests and the demo: returns ``reading`` and counts how often it was read."""

    def __init__(self, reading: ClockReading | None = None) -> None:
        self.reading = reading or ClockReading("ntp", True, 1000.0, "fake")
        self.reads = 0

    @classmethod
    def synchronised(cls, source: TimeSource = "gps-pps", uncertainty_us: float = 1.0) -> FakeClockState:
        return cls(ClockReading(source, True, uncertainty_us, "fake"))

    @classmethod
    def unsynchronised(cls) -> FakeClockState:
        return cls(ClockReading("none", False, None, "fake"))

    def read(self) -> ClockReading:
        self.reads += 1
        return self.reading


# adjtimex(2): status bits and return values (linux/timex.h)
STA_PPSSIGNAL = 0x0100
STA_PPSTIME = 0x0004
STA_UNSYNC = 0x0040
STA_PPSJITTER = 0x0200
STA_PPSWANDER = 0x0400
STA_PPSERROR = 0x0800
STA_CLOCKERR = 0x1000
TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """``struct timex`` of the ``adjtimex`` symbol (native ``long`` fields on both LP64 and 32-bit ARM)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


@dataclass(frozen=True)
class KernelClock:
    """What ``adjtimex(2)`` reports (read with ``modes = 0``, which changes nothing)."""

    state: int
    """Return value: 0 TIME_OK … 5 TIME_ERROR."""
    status: int
    """``STA_*`` bits."""
    maxerror_us: int
    esterror_us: int
    tick_us: int

    @property
    def synchronized(self) -> bool:
        return self.state != TIME_ERROR and not self.status & (STA_UNSYNC | STA_CLOCKERR)

    @property
    def kernel_pps(self) -> bool:
        """The kernel itself disciplines the clock from a healthy PPS signal (ntpd ``hardpps``; not chrony)."""
        pps = STA_PPSSIGNAL | STA_PPSTIME
        return self.status & pps == pps and not self.status & (STA_PPSJITTER | STA_PPSWANDER | STA_PPSERROR)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def read_adjtimex() -> KernelClock:
    """Read the kernel clock state; raises :class:`OSError` where there is no ``adjtimex`` (not Linux)."""
    timex = _Timex()  # modes = 0: read only
    try:
        adjtimex = _libc().adjtimex
    except (OSError, AttributeError) as exc:
        raise OSError(f"adjtimex is not available here: {exc}") from exc
    state = int(adjtimex(ctypes.byref(timex)))
    if state < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"adjtimex failed: {errno}")
    return KernelClock(state, int(timex.status), int(timex.maxerror), int(timex.esterror), int(timex.tick))


@dataclass(frozen=True)
class ReferenceHint:
    """What the time daemon says it is locked to."""

    source: TimeSource
    reference: str
    """e.g. ``PPS``, ``NMEA`` or an NTP server address."""


PPS_REFIDS = ("PPS",)
GPS_REFIDS = ("GPS", "NMEA", "GPSD", "SHM", "SOC")
"""Refclock reference ids (chrony's ``refid``, or its default: driver prefix + number) that mean GPS time."""

_TRACKING_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ()]*?)\s*:\s*(.*?)\s*$")
_REFERENCE_ID = re.compile(r"^([0-9A-Fa-f]+)\s*\((.*)\)$")


def parse_chronyc_tracking(text: str) -> ReferenceHint | None:
    """Read ``chronyc tracking`` output; None when it cannot be understood."""
    fields = {}
    for line in text.splitlines():
        match = _TRACKING_LINE.match(line)
        if match:
            fields[match.group(1).lower()] = match.group(2)
    ref = _REFERENCE_ID.match(fields.get("reference id", ""))
    leap = fields.get("leap status", "")
    if ref is None or not leap:
        return None
    refid_hex, name = ref.group(1), ref.group(2).strip()
    if "not synchronised" in leap.lower() or int(refid_hex, 16) == 0:
        return ReferenceHint("none", name)
    upper = name.upper()
    if upper.startswith(PPS_REFIDS):
        return ReferenceHint("gps-pps", name)
    if upper.startswith(GPS_REFIDS):
        return ReferenceHint("gps", name)
    return ReferenceHint("ntp", name)


def _run_chronyc() -> str:
    done = subprocess.run(["chronyc", "tracking"], capture_output=True, text=True, timeout=2.0, check=True)
    return done.stdout


class ChronyTracking:
    """A cached ``chronyc tracking`` hint; None when chronyc is missing, slow or says nothing useful."""

    def __init__(
        self,
        *,
        run: Callable[[], str] = _run_chronyc,
        max_age_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._hint: ReferenceHint | None = None
        self._read_at: float | None = None
        self._warned = False

    def __call__(self) -> ReferenceHint | None:
        now = self._monotonic()
        if self._read_at is not None and now - self._read_at < self._max_age_s:
            return self._hint
        self._read_at = now
        try:
            self._hint = parse_chronyc_tracking(self._run())
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            if not self._warned:
                log.warning("chronyc tracking unavailable (%s); time source reported as ntp at best", exc)
                self._warned = True
            self._hint = None
        return self._hint


class KernelClockState:
    """:class:`ClockState` from ``adjtimex`` plus an optional reference hint (e.g. :class:`ChronyTracking`).

    Unsynchronised → ``none`` with an unknown (None) uncertainty. Synchronised → ``ntp``, or
    ``gps-pps`` / ``gps`` when the kernel's own PPS discipline is locked or the hint names such a reference. A hint
    that says "not synchronised" wins over the kernel: the worse of the two is believed. The error estimate is
    ``esterror`` (chrony writes its offset standard deviation there), or ``maxerror`` when ``esterror`` is 0.
    """

    def __init__(
        self,
        *,
        adjtimex: Callable[[], KernelClock] = read_adjtimex,
        reference_hint: Callable[[], ReferenceHint | None] | None = None,
    ) -> None:
        self._adjtimex = adjtimex
        self._hint = reference_hint
        self._warned = False

    def read(self) -> ClockReading:
        try:
            kernel = self._adjtimex()
        except OSError as exc:
            if not self._warned:
                log.warning("cannot read the kernel clock state (%s); time source reported as none", exc)
                self._warned = True
            return ClockReading("none", False, None, f"adjtimex: {exc}")
        if not kernel.synchronized:
            return ClockReading("none", False, None, f"kernel unsynchronised (status {kernel.status:#x})")
        error_us = float(kernel.esterror_us if kernel.esterror_us > 0 else kernel.maxerror_us)
        hint = self._hint() if self._hint is not None else None
        if hint is not None and hint.source == "none":
            return ClockReading("none", False, None, "time daemon: not synchronised")
        source: TimeSource = "ntp"
        detail = "kernel synchronised"
        if kernel.kernel_pps:
            source, detail = "gps-pps", "kernel PPS discipline"
        elif hint is not None:
            source, detail = hint.source, f"time daemon reference {hint.reference}"
        return ClockReading(source, True, error_us, detail)
