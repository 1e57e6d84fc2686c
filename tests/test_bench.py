"""Functional test of tools.bench on a tiny synthetic stream: structure of the report only, never speed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.audio.source import SAMPLE_RATE as SR
from tools.bench import main
from tools.bench.proc import REPO, run_pinned
from tools.bench.report import PI_FACTORS, format_report
from tools.bench.streams import build_streams

MODEL = REPO / "models" / "gunshot.tflite"


def _model_arg() -> str:
    return str(MODEL) if MODEL.is_file() and MODEL.with_suffix(".json").is_file() else "fake"


def test_synthetic_streams_are_deterministic() -> None:
    a = build_streams(Path("/nonexistent"), 3.0, synthetic=True)
    b = build_streams(Path("/nonexistent"), 3.0, synthetic=True)
    assert [s.name for s in a] == ["street", "impulse-dense"]
    for x, y in zip(a, b, strict=True):
        assert x.samples.dtype == np.int16
        assert len(x.samples) == 3 * SR
        assert np.array_equal(x.samples, y.samples)


def test_bench_report_structure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--synthetic", "--minutes", "0.1", "--no-peers", "--model", _model_arg(), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["streams"]) == {"street", "impulse-dense"}
    assert report["peers"] == {}
    for name, unit in report["polewatch"].items():
        assert unit["seconds"] == pytest.approx(6.0)
        keys = ("cpu_ms_per_s", "wall_ms_per_s", "peak_rss_mb", "candidates_per_min", "second_looks_per_min")
        for key in (*keys, "windows_per_s"):
            assert unit[key] >= 0.0, key
        assert unit["candidates"] > 0  # the synthetic bursts trip the gate
        assert isinstance(unit["detections"], int)
        assert set(unit["breakdown_ms_per_s"]) == {"gate", "logmel", "model", "second_looks", "rest"}
        # the shipped model carries a second look (two more networks): it is timed per window
        assert (unit["second_look_ms_per_window"] > 0.0) == (_model_arg() != "fake" and _has_second_look())
        assert name in report["targets"]
        assert set(PI_FACTORS) <= set(report["pi_estimate"][name])
    text = format_report(report)
    assert "polewatch" in text and "Pi estimate" in text


def _has_second_look() -> bool:
    return "second_look" in json.loads(MODEL.with_suffix(".json").read_text())


def test_missing_model_is_an_error_not_a_crash(tmp_path: Path) -> None:
    argv = ["--synthetic", "--minutes", "0.05", "--no-peers", "--model", str(tmp_path / "none.tflite")]
    assert main(argv) == 2


def test_a_measured_process_reports_its_own_peak_memory_and_exit_code() -> None:
    """The bench itself may hold hundreds of MB of streams; none of it may show up as the child's peak RSS
    (Linux carries a forking parent's resident set into the child's ru_maxrss across exec)."""
    held = np.ones(300 * 2**20 // 8)  # 300 MB touched in this process
    child = "import sys; x = bytearray(60 * 2**20); sys.stdout.write('hi'); sys.exit(3)"
    proc = run_pinned([sys.executable, "-c", child], cpu=None, timeout_s=60)
    assert held.sum() > 0
    assert (proc.returncode, proc.stdout) == (3, "hi")
    assert 60.0 < proc.peak_rss_mb < 150.0
    assert proc.cpu_s > 0.0


def test_a_process_over_its_time_is_killed() -> None:
    proc = run_pinned([sys.executable, "-c", "import time; time.sleep(30)"], cpu=None, timeout_s=0.5)
    assert proc.returncode != 0
