"""The model wrapper: loads the shipped model in both runtimes and refuses broken or mismatched files."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.detect.detector import MeanLogit
from edge.detect.runtime import DEFAULT_MODEL, TfliteModel, file_sha256, metadata_path
from edge.dsp.logmel import FrontEndParams, LogMel
from edge.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
TFLITE214_PYTHON = Path(os.environ.get("POLEWATCH_TFLITE214_PYTHON", ROOT / ".venv-tflite214" / "bin" / "python"))

needs_model = pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model in models/")


def patches(n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fe = FrontEndParams()
    windows = (rng.standard_normal((n, fe.window_samples)) * 3000).astype(np.int16)
    windows[:, fe.pre_samples :] = (windows[:, fe.pre_samples :] * 4).clip(-32768, 32767)
    return LogMel(fe).patches(windows)


def copy_model(tmp_path: Path) -> Path:
    """The shipped model as ``m.tflite``, with every network its metadata names next to it."""
    for member in DEFAULT_MODEL.parent.glob("gunshot-*"):
        shutil.copy(member, tmp_path / member.name)
    dst = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, dst)
    shutil.copy(metadata_path(DEFAULT_MODEL), metadata_path(dst))
    return dst


def rewrite_meta(model: Path, **changes: object) -> None:
    meta = json.loads(metadata_path(model).read_text())
    meta.update(changes)
    metadata_path(model).write_text(json.dumps(meta))


@needs_model
def test_shipped_model_loads_and_scores_in_unit_range() -> None:
    model = TfliteModel()
    scores = model.predict(patches())
    assert scores.shape == (4,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert 0 < model.info.threshold < 1
    assert model.info.sha256 == file_sha256(DEFAULT_MODEL)


@needs_model
def test_corrupt_model_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    data = bytearray(model.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"m\.tflite is corrupt"):
        TfliteModel(model)


@needs_model
def test_garbage_with_a_matching_hash_is_refused_by_the_runtime(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    model.write_bytes(b"not a flatbuffer at all" * 10)
    rewrite_meta(model, tflite_sha256=file_sha256(model))
    with pytest.raises(ModelError, match="cannot be loaded"):
        TfliteModel(model)


@needs_model
def test_front_end_mismatch_is_refused(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    rewrite_meta(model, front_end=replace(FrontEndParams(), n_mels=FrontEndParams().n_mels + 8).to_dict())
    with pytest.raises(ModelError, match=f"n_mels={FrontEndParams().n_mels + 8}"):
        TfliteModel(model)


@needs_model
def test_metadata_missing_or_broken(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    metadata_path(model).write_text("{ not json")
    with pytest.raises(ModelError, match="unreadable"):
        TfliteModel(model)
    metadata_path(model).unlink()
    with pytest.raises(ModelError, match="missing"):
        TfliteModel(model)


def test_missing_model_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        TfliteModel(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match="directory"):
        TfliteModel(tmp_path)


@needs_model
def test_no_runtime_installed_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.errors import RuntimeMissingError

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(RuntimeMissingError, match="pip install ai-edge-litert"):
        TfliteModel()


@needs_model
@pytest.mark.skipif(not TFLITE214_PYTHON.exists(), reason="no tflite-runtime 2.14 venv (tools/setup.sh makes it)")
def test_shipped_model_gives_the_same_scores_in_tflite_runtime_2_14(tmp_path: Path) -> None:
    x = patches(8, seed=3)
    np.save(tmp_path / "patches.npy", x)
    code = (
        "import sys, numpy as np; from edge.detect.runtime import TfliteModel; "
        "m = TfliteModel(); assert m.runtime == 'tflite-runtime', m.runtime; "
        "np.save(sys.argv[2], m.predict(np.load(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [str(TFLITE214_PYTHON), "-c", code, str(tmp_path / "patches.npy"), str(tmp_path / "out.npy")],
        check=True,
        env=env,
        timeout=120,
    )
    # litert's default XNNPACK delegate may round an int8 intermediate one step differently (≤ 1 output step,
    # ~0.07 in logit, so < 0.02 in score); without the delegate the two runtimes agree bit for bit
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), TfliteModel().predict(x), atol=0.02)


@needs_model
@pytest.mark.parametrize(
    ("second_look", "message"),
    [
        (
            {"model": "gone.tflite", "sha256": "0" * 64, "from_score": 0.5, "weight": 0.5},
            r"gone\.tflite \(named in .*m\.json\) not found",
        ),
        ({"model": "x.tflite", "sha256": "0" * 64, "from_score": "high", "weight": 0.5}, "garbles field"),
        ({"model": "x.tflite", "sha256": "0" * 64, "weight": 0.5}, "lacks or garbles field 'from_score'"),
        ({"model": "x.tflite", "sha256": "0" * 64, "from_score": 1.5, "weight": 0.5}, "must lie in 0..1"),
        ({"model": "m.tflite", "sha256": "0" * 64, "from_score": 0.5, "weight": 0.5}, "another front end: pre_s"),
        ({"models": [], "from_score": 0.5, "weight": 0.5}, "names no model"),
        ({"models": [{"model": "x.tflite"}], "from_score": 0.5, "weight": 0.5}, "lacks or garbles field 'sha256'"),
        ({"models": "m.tflite", "from_score": 0.5, "weight": 0.5}, "garbles field"),
        (
            {"models": [{"model": "m.tflite", "sha256": "0" * 64}], "from_score": 0.5, "weight": 0.5, "front_end": {}},
            r"m\.tflite is not the one .* names",
        ),
    ],
)
def test_a_broken_second_look_is_refused_naming_what_is_wrong(
    tmp_path: Path, second_look: dict[str, object], message: str
) -> None:
    model = copy_model(tmp_path)
    rewrite_meta(model, second_look=second_look)
    with pytest.raises(ModelError, match=message):
        TfliteModel(model)


@needs_model
def test_an_ensemble_second_look_loads_every_member_on_the_first_look_s_window(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    for name in ("a", "b"):
        shutil.copy(model, tmp_path / f"{name}.tflite")
        shutil.copy(metadata_path(model), tmp_path / f"{name}.json")
    sha = file_sha256(model)
    spec = {"models": [{"model": f"{n}.tflite", "sha256": sha} for n in "ab"], "from_score": 0.3, "weight": 2 / 3}
    rewrite_meta(model, second_look={**spec, "front_end": FrontEndParams().to_dict()})
    loaded = TfliteModel(model)
    look = loaded.second_look
    assert look is not None and isinstance(look.scorer, MeanLogit) and len(look.scorer.scorers) == 2
    assert look.front_end == FrontEndParams() and look.from_score == 0.3
    # events quote one sha256 that covers all three networks, in the order they are named
    assert loaded.files == (model, tmp_path / "a.tflite", tmp_path / "b.tflite")
    assert loaded.identity["sha256"] == file_sha256(model, tmp_path / "a.tflite", tmp_path / "b.tflite") != sha
    assert loaded.identity["version"] == loaded.info.version
    assert TfliteModel(model, with_second_look=False).identity["sha256"] == sha
    x = patches()
    # three copies of one network: the mean of three equal logits is that network's score
    np.testing.assert_allclose(look.combine(loaded.predict(x), look.scorer.predict(x)), loaded.predict(x), atol=1e-5)
