"""tools.perturb: a changed copy of a data folder, for robustness runs (no recordings needed: generated audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("scipy")

from tools import perturb

RATE = 16_000
HEADER = "path\tlabel\tgroup\tsource\tduration_s\toriginal_sr\tlicense\torigin\tnote\n"


def _data(root: Path) -> Path:
    data = root / "audio"
    (data / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(3):
        x = rng.standard_normal(RATE) * 800.0
        x[4000:4400] += rng.standard_normal(400) * 8000.0
        sf.write(data / "sub" / f"f{k}.flac", np.round(x).astype(np.int16), RATE, subtype="PCM_16")
        rows.append(f"sub/f{k}.flac\tgunshot\tg:{k}\tus8k\t1.0\t16000\tsynthetic\ttest\t\n")
    rows.append("sub/gone.flac\tdoor\tg:9\tus8k\t1.0\t16000\tsynthetic\ttest\t\n")
    (data / "manifest.tsv").write_text(HEADER + "".join(rows))
    return data


def _read(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float64")
    assert sr == RATE and x.ndim == 1
    return np.asarray(x)


def _changed(tmp_path: Path, *flags: str) -> tuple[Path, Path]:
    data, out = _data(tmp_path), tmp_path / "out"
    assert perturb.main(["--data", str(data), "--out", str(out), *flags]) == 0
    assert (out / "manifest.tsv").read_text() == (data / "manifest.tsv").read_text()  # same rows, same folds
    assert sorted(p.name for p in (out / "sub").iterdir()) == ["f0.flac", "f1.flac", "f2.flac"]  # gone.flac: left out
    return data, out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_gain_scales_and_clips_at_full_scale(tmp_path: Path) -> None:
    data, out = _changed(tmp_path, "--gain-db", "-20")
    a, b = _read(data / "sub" / "f0.flac"), _read(out / "sub" / "f0.flac")
    assert len(a) == len(b) and _rms(b) / _rms(a) == pytest.approx(0.1, rel=0.01)
    _, loud = _changed(tmp_path / "loud", "--gain-db", "30")
    assert np.abs(_read(loud / "sub" / "f0.flac")).max() == pytest.approx(1.0, abs=1e-3)


def test_lowpass_removes_the_top_of_the_band(tmp_path: Path) -> None:
    data, out = _changed(tmp_path, "--lowpass-hz", "2000")
    a, b = _read(data / "sub" / "f1.flac"), _read(out / "sub" / "f1.flac")
    f = np.fft.rfftfreq(len(a), 1.0 / RATE)
    high = f > 4000
    assert np.sum(np.abs(np.fft.rfft(b))[high] ** 2) < 0.001 * np.sum(np.abs(np.fft.rfft(a))[high] ** 2)


def test_mp3_round_trip_keeps_length_and_timing(tmp_path: Path) -> None:
    data, out = _changed(tmp_path, "--mp3", "0.9")
    a, b = _read(data / "sub" / "f2.flac"), _read(out / "sub" / "f2.flac")
    assert len(a) == len(b)
    assert np.corrcoef(a, b)[0, 1] > 0.5  # lossy, but the same sound at the same place
    assert int(np.argmax(np.abs(b))) // 400 == int(np.argmax(np.abs(a))) // 400


def test_noise_is_added_at_its_level_and_seeded_per_file(tmp_path: Path) -> None:
    data, out = _changed(tmp_path, "--noise-dbfs", "-30")
    a, b = _read(data / "sub" / "f0.flac"), _read(out / "sub" / "f0.flac")
    assert 20 * np.log10(_rms(b - a)) == pytest.approx(-30.0, abs=0.2)
    again = tmp_path / "again"
    assert perturb.main(["--data", str(data), "--out", str(again), "--noise-dbfs", "-30"]) == 0
    assert np.array_equal(_read(again / "sub" / "f0.flac"), b)
    assert not np.allclose(b - a, _read(out / "sub" / "f1.flac") - _read(data / "sub" / "f1.flac"))


def test_refuses_to_overwrite_and_checks_its_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    (tmp_path / "taken").mkdir()
    assert perturb.main(["--data", str(data), "--out", str(tmp_path / "taken"), "--gain-db", "3"]) == 2
    assert "exists; give a new folder" in capsys.readouterr().err
    for flags, message in (
        (["--lowpass-hz", "9000"], "below the 8 kHz Nyquist limit"),
        (["--mp3", "2"], "must lie in 0..1"),
        (["--noise-dbfs", "3"], "above full scale"),
        (["--gain-db", "3", "--mp3", "0.5"], "not allowed with"),
    ):
        with pytest.raises(SystemExit):
            perturb.parse_args(["--data", "d", "--out", "o", *flags])
        assert message in capsys.readouterr().err
