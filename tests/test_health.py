from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from edge.audio.source import SourceStats
from edge.clock import ClockReading
from edge.health import (
    REASONS,
    SILENCE_DBFS,
    DiskUsage,
    GpsReading,
    HealthLimits,
    HealthSnapshot,
    MicLevel,
    MicReading,
    OutboxState,
    collect_health,
    cpu_temperature_c,
    degraded_reasons,
    disk_usage,
    status_reasons,
)

SR = 16_000


def tone(seconds: float, dbfs_peak: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    amp = 32768 * 10 ** (dbfs_peak / 20)
    noise = np.random.default_rng(seed).normal(0, 3, t.size)
    return np.clip(np.rint(amp * np.sin(2 * np.pi * 440 * t) + noise), -32768, 32767).astype(np.int16)


def feed(meter: MicLevel, samples: np.ndarray, chunk: int) -> None:
    for start in range(0, samples.size, chunk):
        meter.update(samples[start : start + chunk])


def test_a_full_scale_sine_reads_minus_3_dbfs() -> None:
    meter = MicLevel()
    feed(meter, tone(2, -0.0001), 512)
    reading = meter.reading()
    assert reading.seconds == 2
    assert reading.rms_dbfs == pytest.approx(-3.01, abs=0.05)


def test_readings_do_not_depend_on_chunk_size() -> None:
    rng = np.random.default_rng(3)
    samples = np.concatenate([tone(7.3, -20), (rng.normal(0, 30, 5 * SR)).astype(np.int16), tone(3, 1.0)])
    readings = []
    for chunk in (160, 512, 1000, 4096, 16_000, 23_456):
        meter = MicLevel(clip_window_s=5)
        feed(meter, samples, chunk)
        readings.append(meter.reading())
    first = readings[0]
    for other in readings[1:]:
        assert other.seconds == first.seconds
        assert other.rms_dbfs == pytest.approx(first.rms_dbfs, abs=1e-9)
        assert other.noise_floor_dbfs == pytest.approx(first.noise_floor_dbfs, abs=1e-9)
        assert other.clipping_ratio == first.clipping_ratio
        assert other.quiet_s == first.quiet_s


def test_noise_floor_is_a_low_percentile_of_the_seconds() -> None:
    rng = np.random.default_rng(1)
    quiet = rng.normal(0, 33, 50 * SR).astype(np.int16)  # ≈ -60 dBFS
    meter = MicLevel()
    feed(meter, quiet, 4096)
    for _ in range(5):  # loud events now and then do not lift the floor
        feed(meter, tone(1, -6), 4096)
        feed(meter, rng.normal(0, 33, 5 * SR).astype(np.int16), 4096)
    reading = meter.reading()
    assert reading.noise_floor_dbfs == pytest.approx(-60, abs=1)
    assert reading.rms_dbfs == pytest.approx(-60, abs=1)


def test_clipping_ratio_counts_full_scale_samples_in_the_window() -> None:
    meter = MicLevel(clip_window_s=10)
    samples = np.zeros(10 * SR, dtype=np.int16)
    samples[:1600] = 32767
    samples[1600:3200] = -32768
    feed(meter, samples, 512)
    assert meter.reading().clipping_ratio == pytest.approx(3200 / (10 * SR))
    feed(meter, np.zeros(10 * SR, dtype=np.int16), 512)  # the clipped second has left the window
    assert meter.reading().clipping_ratio == 0.0


def test_digital_silence_counts_quiet_seconds_and_a_sound_resets_them() -> None:
    meter = MicLevel()
    feed(meter, np.zeros(31 * SR, dtype=np.int16), 1024)
    reading = meter.reading()
    assert reading.rms_dbfs == SILENCE_DBFS and reading.quiet_s == 31
    feed(meter, tone(1, -30), 1024)
    assert meter.reading().quiet_s == 0


def test_no_reading_before_the_first_second() -> None:
    meter = MicLevel()
    meter.update(tone(0.5, -20))
    assert meter.reading() == MicReading(None, None, 0.0, 0.0, 0)


def test_mic_level_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="clip_level"):
        MicLevel(clip_level=40_000)
    with pytest.raises(ValueError):
        MicLevel(floor_percentile=101)


def test_disk_usage_of_a_real_path(tmp_path: Path) -> None:
    usage = disk_usage(tmp_path)
    assert usage.total_bytes > 0 and 0 <= usage.free_bytes <= usage.total_bytes
    assert 0.0 <= usage.used_fraction <= 1.0
    with pytest.raises(OSError):
        disk_usage(tmp_path / "missing")


def make_zone(root: Path, n: int, kind: str, millidegrees: str) -> None:
    zone = root / f"thermal_zone{n}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(millidegrees + "\n")


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path: Path) -> None:
    make_zone(tmp_path, 0, "acpitz", "27800")
    make_zone(tmp_path, 1, "cpu-thermal", "51540")
    make_zone(tmp_path, 2, "broken", "n/a")
    assert cpu_temperature_c(tmp_path) == pytest.approx(51.54)


def test_cpu_temperature_falls_back_to_any_zone_and_to_none(tmp_path: Path) -> None:
    assert cpu_temperature_c(tmp_path) is None
    make_zone(tmp_path, 0, "acpitz", "27800")
    assert cpu_temperature_c(tmp_path) == pytest.approx(27.8)


def snapshot(**changes: object) -> HealthSnapshot:
    base: dict[str, object] = {
        "unit_id": "pole-17",
        "ts_ns": 1_700_000_000_123_456_789,
        "uptime_s": 3600.04,
        "mic": MicReading(-52.34, -61.26, 0.0, 0.0, 3600),
        "overflows": 2,
        "clock": ClockReading("gps-pps", True, 1.24),
        "disk": DiskUsage(free_bytes=20_000_000_000, total_bytes=32_000_000_000),
        "temperature_c": 48.25,
        "outbox": OutboxState(3, 1.54),
        "gps": GpsReading(),
    }
    base.update(changes)
    return HealthSnapshot(**base)  # type: ignore[arg-type]


def test_health_message_has_the_contract_fields() -> None:
    message = snapshot().as_message()
    assert message == {
        "schema": "polewatch/health/1",
        "unit_id": "pole-17",
        "ts": "2023-11-14T22:13:20.123456Z",
        "uptime_s": 3600.0,
        "mic": {"rms_dbfs": -52.3, "noise_floor_dbfs": -61.3, "clipping_ratio": 0.0, "overflows": 2},
        "gps": {"fix": "none"},
        "clock": {"source": "gps-pps", "synchronized": True, "uncertainty_us": 1.2},
        "disk": {"free_bytes": 20_000_000_000, "used_fraction": 0.375},
        "temperature_c": 48.2,
        "outbox": {"depth": 3, "oldest_s": 1.5},
    }
    json.dumps(message, allow_nan=False)


def test_health_message_with_unknowns_is_still_json() -> None:
    unknown = snapshot(
        mic=MicReading(None, None, 0.0, 0.0, 0),
        disk=None,
        temperature_c=None,
        clock=ClockReading("none", False, None),
        gps=GpsReading("3d", 7),
    )
    message = unknown.as_message()
    assert message["disk"] == {"free_bytes": 0, "used_fraction": 1.0}
    assert message["mic"]["rms_dbfs"] is None and message["temperature_c"] is None
    assert message["clock"] == {"source": "none", "synchronized": False, "uncertainty_us": None}
    assert message["gps"] == {"fix": "3d", "satellites": 7}
    json.dumps(message, allow_nan=False)


def test_collect_health_reads_every_part(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    meter = MicLevel()
    feed(meter, tone(2, -20), 512)
    stats = SourceStats(overflows=4)
    snap = collect_health(
        unit_id="pole-17",
        mic=meter,
        source_stats=stats,
        clock=lambda: ClockReading("ntp", True, 800.0),
        data_path=tmp_path,
        started_monotonic=100.0,
        outbox=OutboxState(0, None),
        now_ns=lambda: 1_700_000_000 * 10**9,
        monotonic=lambda: 160.0,
        temperature=lambda: 41.0,
    )
    assert snap.uptime_s == 60.0 and snap.overflows == 4 and snap.temperature_c == 41.0
    assert snap.disk is not None and snap.mic.seconds == 2
    with caplog.at_level(logging.WARNING):
        snap = collect_health(
            unit_id="pole-17",
            mic=meter,
            source_stats=stats,
            clock=lambda: ClockReading("none", False, None),
            data_path=tmp_path / "gone",
            started_monotonic=0.0,
        )
    assert snap.disk is None and "cannot read disk usage" in caplog.text


def test_a_healthy_unit_has_no_reasons() -> None:
    assert status_reasons(snapshot(), gps_expected=False) == []


@pytest.mark.parametrize(
    ("changes", "flags", "code"),
    [
        ({"mic": MicReading(SILENCE_DBFS, SILENCE_DBFS, 0.0, 31.0, 100)}, {}, "no-mic-signal"),
        ({"mic": MicReading(-5.0, -40.0, 0.02, 0.0, 100)}, {}, "mic-clipping"),
        ({"clock": ClockReading("none", False, None)}, {}, "clock-unsynchronised"),
        ({}, {"gps_expected": True}, "no-gps"),
        ({"gps": GpsReading("none", 3)}, {"gps_expected": True}, "no-gps"),
        ({"disk": DiskUsage(150_000_000, 1_000_000_000)}, {}, "disk-low"),  # 15 % free but < 200 MB
        ({"disk": DiskUsage(2_000_000_000, 32_000_000_000)}, {}, "disk-low"),  # 2 GB free but < 10 %
        ({"disk": None}, {}, "disk-low"),  # unreadable
        ({}, {"camera_failed": True}, "camera-failed"),
        ({"outbox": OutboxState(101, 12.0)}, {}, "outbox-backlog"),
        ({"outbox": OutboxState(2, 301.0)}, {}, "outbox-backlog"),
    ],
)
def test_each_degraded_reason(changes: dict[str, object], flags: dict[str, bool], code: str) -> None:
    snap = snapshot(**changes)
    assert status_reasons(snap, **flags) == [code]  # type: ignore[arg-type]
    (reason,) = degraded_reasons(snap, **flags)  # type: ignore[arg-type]
    assert reason.code == code and reason.text.startswith(REASONS[code])


def test_thresholds_are_limits_not_constants() -> None:
    snap = snapshot(mic=MicReading(-95.0, -95.0, 0.0, 20.0, 100))
    assert status_reasons(snap) == []
    assert status_reasons(snap, limits=HealthLimits(quiet_s=10)) == ["no-mic-signal"]


def test_gps_with_a_fix_is_fine_and_several_reasons_come_in_order() -> None:
    assert status_reasons(snapshot(gps=GpsReading("3d", 9)), gps_expected=True) == []
    snap = snapshot(clock=ClockReading("none", False, None), outbox=OutboxState(500, 900.0))
    assert status_reasons(snap, camera_failed=True) == ["clock-unsynchronised", "camera-failed", "outbox-backlog"]
