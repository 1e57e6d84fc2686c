from __future__ import annotations

import dataclasses
import logging
import sys
import time

import numpy as np
import pytest

from edge.clock import (
    STA_PPSSIGNAL,
    STA_PPSTIME,
    STA_UNSYNC,
    TIME_ERROR,
    ChronyTracking,
    ClockReading,
    FakeClockState,
    KernelClock,
    KernelClockState,
    OnsetTime,
    ReferenceHint,
    iso_utc,
    parse_chronyc_tracking,
    read_adjtimex,
)
from edge.timebase import LatencyCalibration, Timebase, TimebaseNotReadyError

REALTIME_OFFSET_NS = 1_700_000_000 * 10**9  # CLOCK_REALTIME - CLOCK_MONOTONIC of the simulated machine
T0_NS = 5 * 10**12  # monotonic time of sample 0
LATENCY_NS = 4_000_000  # fixed capture → arrival latency the simulated driver adds


class SimClock:
    """Monotonic and realtime clocks that advance a little on every read (so bracketing has work to do)."""

    def __init__(self, start_ns: int = T0_NS) -> None:
        self.now_ns = start_ns

    def monotonic_ns(self) -> int:
        self.now_ns += 50
        return self.now_ns

    def realtime_ns(self) -> int:
        self.now_ns += 50
        return self.now_ns + REALTIME_OFFSET_NS


def make_timebase(clock_state: FakeClockState | None = None, **kwargs: object) -> tuple[Timebase, SimClock]:
    sim = SimClock()
    tb = Timebase(
        clock_state or FakeClockState.synchronised("gps-pps", 1.0),
        latency=LatencyCalibration(mean_us=LATENCY_NS / 1000, uncertainty_us=0.0),
        monotonic_ns=sim.monotonic_ns,
        realtime_ns=sim.realtime_ns,
        **kwargs,  # type: ignore[arg-type]
    )
    return tb, sim


def capture_ns(index: float, rate: float) -> float:
    return T0_NS + index * 1e9 / rate


def feed(
    tb: Timebase,
    *,
    seconds: float,
    rate: float,
    chunk: int = 512,
    start_index: int = 0,
    jitter_mean_ns: float = 0.0,
    stall_every_s: float = 0.0,
    stall_ns: float = 0.0,
    seed: int = 1,
    time_shift_ns: float = 0.0,
) -> int:
    """Chunks of a device running at ``rate`` Hz arrive late by LATENCY_NS + exponential jitter (+ stalls)."""
    rng = np.random.default_rng(seed)
    end = start_index
    stop = start_index + round(seconds * 16_000)
    next_stall = start_index / 16_000 + stall_every_s if stall_every_s else float("inf")
    stalled_until_ns = 0.0
    while end < stop:
        end += chunk
        arrival = capture_ns(end, rate) + LATENCY_NS + time_shift_ns + rng.exponential(jitter_mean_ns or 1e-9)
        if end / 16_000 >= next_stall:
            stalled_until_ns = arrival + stall_ns
            next_stall += stall_every_s
        arrival = max(arrival, stalled_until_ns)  # a stalled consumer sees queued chunks late, then in a rush
        tb.observe(end, round(arrival))
    return end


def known(uncertainty_us: float | None) -> float:
    assert uncertainty_us is not None
    return uncertainty_us


def truth_utc_ns(index: float, rate: float, time_shift_ns: float = 0.0) -> float:
    return capture_ns(index, rate) + time_shift_ns + REALTIME_OFFSET_NS


def test_estimates_the_real_rate_of_a_16000_8_hz_device() -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=180, rate=16_000.8, jitter_mean_ns=2e6)
    fit = tb.fit()
    assert fit is not None and fit.measured and not fit.clamped
    assert fit.sample_rate_hz == pytest.approx(16_000.8, abs=0.02)
    for back_s in (0.3, 10.0, 120.0):
        index = end - back_s * 16_000
        onset = tb.utc_of(index)
        error_us = abs(onset.utc_ns - truth_utc_ns(index, 16_000.8)) / 1000
        assert error_us < 300, back_s
        assert error_us <= known(onset.uncertainty_us)
    # the nominal rate would be this far off two minutes back: the fit is what makes the difference
    naive_error_us = 120 * 0.8 / 16_000 * 1e6
    assert naive_error_us > 5_000


def test_survives_scheduling_jitter_and_stalls() -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=300, rate=15_999.6, jitter_mean_ns=8e6, stall_every_s=7.0, stall_ns=400e6, seed=7)
    fit = tb.fit()
    assert fit is not None
    assert tb.restarts == 0
    assert fit.sample_rate_hz == pytest.approx(15_999.6, abs=0.05)
    for back_s in (0.5, 5.0, 60.0):
        index = end - back_s * 16_000
        onset = tb.utc_of(index)
        error_us = abs(onset.utc_ns - truth_utc_ns(index, 15_999.6)) / 1000
        assert error_us < 1_000
        assert error_us <= known(onset.uncertainty_us)


def test_any_chunk_size_gives_the_same_answer() -> None:
    answers = []
    for chunk in (160, 512, 1024, 4000):
        tb, _ = make_timebase()
        feed(tb, seconds=60, rate=16_000.5, chunk=chunk)
        answers.append(tb.utc_of(40 * 16_000).utc_ns)
    assert max(answers) - min(answers) < 20_000  # 20 µs


def test_unsynchronised_clock_reports_source_none_and_an_unknown_uncertainty() -> None:
    tb, _ = make_timebase(FakeClockState.unsynchronised())
    end = feed(tb, seconds=20, rate=16_000.0)
    onset = tb.utc_of(end - 8_000)
    assert onset.source == "none"
    assert onset.uncertainty_us is None  # a clock without sync may be off by days: no number is honest
    assert tb.clock().synchronized is False


def test_source_and_uncertainty_must_agree() -> None:
    with pytest.raises(ValueError, match="exactly when"):
        OnsetTime(0, "none", 5.0)
    with pytest.raises(ValueError, match="exactly when"):
        OnsetTime(0, "ntp", None)
    with pytest.raises(ValueError, match="one of"):
        OnsetTime(0, "sundial", 5.0)
    with pytest.raises(ValueError, match="finite"):
        ClockReading("ntp", True, float("nan"))
    with pytest.raises(ValueError, match="synchronised exactly"):
        ClockReading("ntp", False, 5.0)


def test_uncertainty_adds_clock_fit_and_latency() -> None:
    sim = SimClock()
    clock = FakeClockState(ClockReading("ntp", True, 2_500.0))
    tb = Timebase(
        clock, latency=LatencyCalibration(0.0, 10_000.0), monotonic_ns=sim.monotonic_ns, realtime_ns=sim.realtime_ns
    )
    end = feed(tb, seconds=60, rate=16_000.0)
    fit = tb.fit()
    assert fit is not None
    onset = tb.utc_of(end - 1_000)
    assert onset.source == "ntp"
    assert known(onset.uncertainty_us) == pytest.approx(2_500.0 + 10_000.0 + fit.spread_us(end - 1_000, 2.0))
    # uncalibrated, the latency is not subtracted: the time is late by the driver latency, within the uncertainty
    late_us = (onset.utc_ns - truth_utc_ns(end - 1_000, 16_000.0)) / 1000
    assert late_us == pytest.approx(LATENCY_NS / 1000, abs=50)
    assert late_us < known(onset.uncertainty_us)


def test_before_the_rate_is_measured_the_uncertainty_says_so() -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=2, rate=16_000.8)
    fit = tb.fit()
    assert fit is not None and not fit.measured and fit.sample_rate_hz == 16_000.0
    onset = tb.utc_of(end - 16_000)
    assert abs(onset.utc_ns - truth_utc_ns(end - 16_000, 16_000.8)) / 1000 <= known(onset.uncertainty_us)
    assert known(onset.uncertainty_us) > 1_000  # ±1 % rate over a second: several ms


def test_a_rate_far_off_nominal_is_clamped(caplog: pytest.LogCaptureFixture) -> None:
    tb, _ = make_timebase()
    with caplog.at_level(logging.WARNING):
        feed(tb, seconds=30, rate=17_000.0)
        fit = tb.fit()
    assert fit is not None and fit.clamped
    assert fit.sample_rate_hz == pytest.approx(16_000 * 1.01)
    assert "clamped" in caplog.text


def test_a_lasting_late_jump_restarts_the_fit(caplog: pytest.LogCaptureFixture) -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=60, rate=16_000.0, jitter_mean_ns=1e6)
    # 300 ms of samples were lost: from now on every index arrives 300 ms later than the old line says
    with caplog.at_level(logging.WARNING):
        end = feed(tb, seconds=30, rate=16_000.0, start_index=end, jitter_mean_ns=1e6, time_shift_ns=300e6, seed=2)
    assert tb.restarts == 1
    assert "jumped" in caplog.text
    index = end - 8_000
    onset = tb.utc_of(index)
    assert abs(onset.utc_ns - truth_utc_ns(index, 16_000.0, 300e6)) / 1000 < 500


def test_a_short_backlog_does_not_restart_but_widens_the_uncertainty() -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=60, rate=16_000.0, jitter_mean_ns=1e6)
    end = feed(tb, seconds=4, rate=16_000.0, start_index=end, time_shift_ns=2e9, seed=3)  # consumer 2 s behind
    assert tb.restarts == 0
    onset = tb.utc_of(end - 8_000)
    assert abs(onset.utc_ns - truth_utc_ns(end - 8_000, 16_000.0)) / 1000 < 500
    assert known(onset.uncertainty_us) > 1_000_000  # the unresolved 2 s are owned up to
    end = feed(tb, seconds=5, rate=16_000.0, start_index=end, jitter_mean_ns=1e6, seed=4)
    assert tb.restarts == 0
    assert known(tb.utc_of(end - 8_000).uncertainty_us) < 1_000


def test_an_early_jump_restarts_quickly() -> None:
    tb, _ = make_timebase()
    end = feed(tb, seconds=60, rate=16_000.0)
    feed(tb, seconds=4, rate=16_000.0, start_index=end, time_shift_ns=-200e6)
    assert tb.restarts == 1


def test_an_index_going_back_restarts_the_fit() -> None:
    tb, _ = make_timebase()
    feed(tb, seconds=10, rate=16_000.0)
    tb.observe(512, T0_NS + 10**12)
    assert tb.restarts == 1
    fit = tb.fit()
    assert fit is not None and fit.points == 1


def test_no_time_before_the_first_chunk() -> None:
    tb, _ = make_timebase()
    assert tb.fit() is None
    with pytest.raises(TimebaseNotReadyError):
        tb.utc_of(0)


def test_observe_without_a_time_uses_the_monotonic_clock() -> None:
    tb, sim = make_timebase()
    tb.observe(512)
    fit = tb.fit()
    assert fit is not None and abs(fit.monotonic_ns(512) - sim.now_ns) < 1_000


def test_onset_time_is_frozen_and_formats_iso() -> None:
    onset = OnsetTime(1_700_000_000_123_456_789, "gps-pps", 1.5)
    assert onset.iso == "2023-11-14T22:13:20.123456Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000000Z"
    with pytest.raises(dataclasses.FrozenInstanceError):
        onset.utc_ns = 0  # type: ignore[misc]


# -- clock state -------------------------------------------------------------------------------------------------


def kernel(status: int = 0, state: int = 0, maxerror: int = 1_000, esterror: int = 20) -> KernelClock:
    return KernelClock(state=state, status=status, maxerror_us=maxerror, esterror_us=esterror, tick_us=10_000)


def test_kernel_unsynchronised_means_none() -> None:
    state = KernelClockState(adjtimex=lambda: kernel(STA_UNSYNC, TIME_ERROR, 16_000_000, 16_000_000))
    reading = state.read()
    assert reading.source == "none" and not reading.synchronized
    assert reading.uncertainty_us is None


def test_kernel_synchronised_without_hint_means_ntp_with_esterror() -> None:
    reading = KernelClockState(adjtimex=lambda: kernel()).read()
    assert (reading.source, reading.synchronized, reading.uncertainty_us) == ("ntp", True, 20.0)


def test_maxerror_is_used_when_esterror_is_not_set() -> None:
    assert KernelClockState(adjtimex=lambda: kernel(esterror=0)).read().uncertainty_us == 1_000.0


def test_hint_names_the_reference() -> None:
    for hint, source in ((ReferenceHint("gps-pps", "PPS"), "gps-pps"), (ReferenceHint("gps", "NMEA"), "gps")):
        reading = KernelClockState(adjtimex=lambda: kernel(), reference_hint=lambda h=hint: h).read()  # type: ignore[misc]
        assert reading.source == source and reading.synchronized


def test_a_hint_that_says_unsynchronised_wins() -> None:
    reading = KernelClockState(adjtimex=lambda: kernel(), reference_hint=lambda: ReferenceHint("none", "")).read()
    assert reading.source == "none" and not reading.synchronized


def test_kernel_pps_discipline_means_gps_pps() -> None:
    assert KernelClockState(adjtimex=lambda: kernel(STA_PPSSIGNAL | STA_PPSTIME)).read().source == "gps-pps"


def test_no_adjtimex_means_none(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> KernelClock:
        raise OSError("not here")

    state = KernelClockState(adjtimex=broken)
    with caplog.at_level(logging.WARNING):
        assert state.read().source == "none"
        assert state.read().source == "none"
    assert caplog.text.count("cannot read the kernel clock state") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux only")
def test_adjtimex_is_really_callable_here() -> None:
    clock = read_adjtimex()
    assert 0 <= clock.state <= 5
    assert 9_000 <= clock.tick_us <= 11_000  # USER_HZ tick of 10 ms, give or take the frequency trim
    assert clock.maxerror_us >= 0 and clock.esterror_us >= 0
    reading = KernelClockState().read()
    assert reading.synchronized == clock.synchronized
    if not clock.synchronized:
        assert reading.source == "none"


TRACKING_PPS = """\
Reference ID    : 50505300 (PPS)
Stratum         : 1
Ref time (UTC)  : Thu Nov 28 10:00:00 2024
System time     : 0.000000012 seconds fast of NTP time
Last offset     : -0.000000041 seconds
RMS offset      : 0.000000085 seconds
Frequency       : 1.234 ppm slow
Root delay      : 0.000000001 seconds
Root dispersion : 0.000010471 seconds
Update interval : 16.0 seconds
Leap status     : Normal
"""


def test_parse_chronyc_tracking() -> None:
    assert parse_chronyc_tracking(TRACKING_PPS) == ReferenceHint("gps-pps", "PPS")
    nmea = TRACKING_PPS.replace("50505300 (PPS)", "4E4D4541 (NMEA)")
    assert parse_chronyc_tracking(nmea) == ReferenceHint("gps", "NMEA")
    server = TRACKING_PPS.replace("50505300 (PPS)", "C0A80001 (192.168.0.1)")
    assert parse_chronyc_tracking(server) == ReferenceHint("ntp", "192.168.0.1")
    lost = TRACKING_PPS.replace("50505300 (PPS)", "00000000 ()").replace("Normal", "Not synchronised")
    assert parse_chronyc_tracking(lost) == ReferenceHint("none", "")
    assert parse_chronyc_tracking("506 Cannot talk to daemon") is None


def test_chrony_tracking_is_cached_and_failures_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    now = [0.0]

    def run() -> str:
        calls.append(1)
        return TRACKING_PPS

    hint = ChronyTracking(run=run, max_age_s=30, monotonic=lambda: now[0])
    assert hint() == ReferenceHint("gps-pps", "PPS")
    now[0] = 10.0
    hint()
    assert len(calls) == 1
    now[0] = 41.0
    hint()
    assert len(calls) == 2

    def missing() -> str:
        raise FileNotFoundError("chronyc")

    broken = ChronyTracking(run=missing, max_age_s=0, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert broken() is None
        assert broken() is None
    assert caplog.text.count("chronyc tracking unavailable") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux only")
def test_with_the_real_clocks_a_just_arrived_sample_is_now() -> None:
    tb = Timebase(KernelClockState())
    tb.observe(512)
    before_ns = time.time_ns()
    onset = tb.utc_of(512)
    assert abs(onset.utc_ns - before_ns) < 5_000_000
    assert onset.source in ("gps-pps", "gps", "ntp", "none")
    if onset.source == "none":
        assert onset.uncertainty_us is None
    else:
        assert known(onset.uncertainty_us) >= tb.latency.uncertainty_us
