"""``polewatch survey``: records the configured source into a FLAC file and a manifest tools.train can add."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main, survey_cmd
from edge.health import DiskUsage
from tools.dataset import read_manifest

RATE = 16_000


def _config(tmp_path: Path, audio: Path, unit: str = "pole-7") -> Path:
    cfg = tmp_path / "polewatch.toml"
    cfg.write_text(f'[unit]\nid = "{unit}"\n\n[audio]\nsource = "file"\nfile = "{audio}"\nrealtime = false\n')
    return cfg


def _ambience(path: Path, seconds: float) -> Path:
    noise = np.random.default_rng(0).standard_normal(int(seconds * RATE)) * 300
    sf.write(str(path), noise.astype(np.int16), RATE, subtype="PCM_16")
    return path


def test_survey_records_the_asked_minutes_and_lists_them(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _ambience(tmp_path / "site.wav", 5.0))
    out = tmp_path / "survey"
    for _ in range(2):  # a second survey adds a file and a row, even within the same second
        assert main(["survey", "--config", str(cfg), "--out", str(out), "--minutes", "0.05"]) == 0
    items = read_manifest(out)
    assert len({i.path for i in items}) == 2
    assert {i.label for i in items} == {"background"} and {i.source for i in items} == {"survey:pole-7"}
    for item in items:
        audio, rate = sf.read(str(out / item.path), dtype="int16")
        assert rate == RATE and len(audio) == 3 * RATE == round(item.duration_s * RATE)
    lines = (out / "manifest.tsv").read_text().splitlines()
    assert lines[0].startswith("path\tlabel\tgroup\tsource\tduration_s")
    assert sum(ln.startswith("path") for ln in lines) == 1


def test_each_minute_prints_the_level_meter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, _ambience(tmp_path / "site.wav", 62.0))
    assert main(["survey", "--config", str(cfg), "--out", str(tmp_path / "s"), "--minutes", "1.02"]) == 0
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if "min:" in ln]
    # noise at 300 / 32768 RMS: 20 log10(0.0092) = -41 dBFS, nothing clipped
    assert line == "1 of 1.02 min: level -41 dBFS, floor -41 dBFS, 0.00 % clipped"


def test_a_short_recording_keeps_what_there_was(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _ambience(tmp_path / "site.wav", 1.0))
    out = tmp_path / "survey"
    assert main(["survey", "--config", str(cfg), "--out", str(out), "--minutes", "1"]) == 0
    [item] = read_manifest(out)
    assert item.duration_s == pytest.approx(1.0)


def test_a_missing_source_or_bad_minutes_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, tmp_path / "absent.wav")
    assert main(["survey", "--config", str(cfg), "--out", str(tmp_path / "s"), "--minutes", "1"]) == 1
    assert main(["survey", "--config", str(cfg), "--out", str(tmp_path / "s"), "--minutes", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "absent.wav" in err[0] and "--minutes 0" in err[1]
    assert not (tmp_path / "s" / "manifest.tsv").exists()


def test_a_disk_that_fills_up_removes_the_unfinished_file(tmp_path: Path) -> None:
    # A real short write: the child process may not grow a file beyond 64 kB (RLIMIT_FSIZE), so libsndfile's write
    # fails mid-survey exactly as on a full disk.
    cfg = _config(tmp_path, _ambience(tmp_path / "site.wav", 30.0))
    out = tmp_path / "survey"
    out.mkdir()
    limit = textwrap.dedent(f"""
        import resource, signal, sys
        from edge.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65_536, 65_536))
        sys.exit(main(["survey", "--config", {str(cfg)!r}, "--out", {str(out)!r}, "--minutes", "0.5"]))
    """)
    done = subprocess.run([sys.executable, "-c", limit], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    err = done.stderr.strip()
    assert "\n" not in err and "failed after" in err and "is the disk full?" in err, err
    assert list(out.iterdir()) == []


def test_too_little_free_space_is_refused_before_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, _ambience(tmp_path / "site.wav", 1.0))
    out = tmp_path / "survey"
    # 10 MB free: enough for 4 minutes of 16 kHz 16-bit audio (1.92 MB a minute), not for 20
    monkeypatch.setattr(survey_cmd, "disk_usage", lambda _path: DiskUsage(free_bytes=10_000_000, total_bytes=1 << 30))
    assert main(["survey", "--config", str(cfg), "--out", str(out), "--minutes", "20"]) == 1
    err = capsys.readouterr().err.strip()
    expected = f"{out} has 10.0 MB free and 20 min may need 40.3 MB; free space there or ask for fewer --minutes"
    assert err == f"polewatch: error: {expected}"
    assert list(out.iterdir()) == []
    assert main(["survey", "--config", str(cfg), "--out", str(out), "--minutes", "4"]) == 0
