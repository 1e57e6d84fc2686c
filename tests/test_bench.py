"""Functional test of tools.bench on a tiny synthetic stream: structure of the report only, never speed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.audio.source import SAMPLE_RATE as SR
from tools.bench import main
from tools.bench.proc import REPO
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
        for key in ("cpu_ms_per_s", "wall_ms_per_s", "peak_rss_mb", "candidates_per_min", "windows_per_s"):
            assert unit[key] >= 0.0, key
        assert unit["candidates"] > 0  # the synthetic bursts trip the gate
        assert isinstance(unit["detections"], int)
        assert set(unit["breakdown_ms_per_s"]) == {"gate", "logmel", "model", "rest"}
        assert name in report["targets"]
        assert set(PI_FACTORS) <= set(report["pi_estimate"][name])
    text = format_report(report)
    assert "polewatch" in text and "Pi estimate" in text


def test_missing_model_is_an_error_not_a_crash(tmp_path: Path) -> None:
    argv = ["--synthetic", "--minutes", "0.05", "--no-peers", "--model", str(tmp_path / "none.tflite")]
    assert main(argv) == 2
