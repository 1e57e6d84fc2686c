"""Loads a ``.tflite`` classifier with its metadata JSON and checks both against the front end.

The runtime package is imported only here, lazily: ai-edge-litert first, tflite-runtime as the fallback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.detector import MeanLogit, Scorer, SecondLook
from edge.dsp.logmel import FloatArray, FrontEndParams, second_look_front_end
from edge.errors import ModelError, RuntimeMissingError

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = MODELS_DIR / "gunshot.tflite"
GUNSHOT = "gunshot"


def metadata_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def file_sha256(*paths: Path) -> str:
    """SHA-256 of the files' bytes, one file after the other."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise RuntimeMissingError(
                "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime on Python <= 3.11)"
            ) from exc
        return Interpreter, "tflite-runtime"
    return Interpreter, "ai-edge-litert"


@dataclass(frozen=True)
class ModelInfo:
    """What the metadata JSON promises about the model; events quote name, version and sha256."""

    name: str
    version: str
    sha256: str
    threshold: float
    class_names: tuple[str, ...]
    front_end: FrontEndParams
    input_shape: tuple[int, ...]
    raw: dict[str, Any]

    @property
    def gunshot_index(self) -> int:
        return self.class_names.index(GUNSHOT)


def read_metadata(model_path: Path) -> ModelInfo:
    meta_file = metadata_path(model_path)
    try:
        raw = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise ModelError(f"model metadata {meta_file} is missing: every model ships with its .json") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model metadata {meta_file} is unreadable ({exc}); reinstall the model") from None
    try:
        info = ModelInfo(
            name=str(raw["name"]),
            version=str(raw["version"]),
            sha256=str(raw["tflite_sha256"]),
            threshold=float(raw["threshold"]),
            class_names=tuple(str(c) for c in raw["class_names"]),
            front_end=FrontEndParams.from_dict(raw["front_end"]),
            input_shape=tuple(int(d) for d in raw["input_shape"]),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model metadata {meta_file} lacks or garbles field {exc}") from None
    if GUNSHOT not in info.class_names:
        raise ModelError(f"model metadata {meta_file}: class_names {list(info.class_names)} has no {GUNSHOT!r}")
    return info


class TfliteModel:
    """A verified classifier: ``predict(patches)`` gives the gunshot score of each log-mel patch."""

    def __init__(
        self,
        path: Path | str | None = None,
        front_end: FrontEndParams | None = None,
        threads: int = 1,
        *,
        with_second_look: bool = True,
    ):
        self.path = Path(path) if path else DEFAULT_MODEL
        if self.path.is_dir():
            raise ModelError(f"model {self.path} is a directory; give the .tflite file")
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} not found; set detect.model or reinstall polewatch")
        self.info = read_metadata(self.path)
        actual = file_sha256(self.path)
        if actual != self.info.sha256:
            raise ModelError(
                f"model file {self.path} is corrupt or was replaced: sha256 {actual[:12]}... does not match "
                f"its metadata ({self.info.sha256[:12]}...); reinstall the model with its .json"
            )
        expected = front_end or FrontEndParams()
        if self.info.front_end != expected:
            diffs = [
                f"{k}={v!r} (front end has {getattr(expected, k)!r})"
                for k, v in self.info.front_end.to_dict().items()
                if getattr(expected, k) != v
            ]
            raise ModelError(f"model {self.path} was trained for another front end: {', '.join(diffs)}")
        interpreter_cls, self.runtime = _interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(self.path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {self.path} cannot be loaded by {self.runtime}: {exc}") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        want = (1, expected.n_frames, expected.n_mels, 1)
        if tuple(inp["shape"]) != want or tuple(self.info.input_shape) != want:
            raise ModelError(
                f"model {self.path} takes input {tuple(inp['shape'])} (metadata {self.info.input_shape}); "
                f"the front end makes {want}"
            )
        if out["shape"][-1] != len(self.info.class_names):
            raise ModelError(
                f"model {self.path} has {out['shape'][-1]} outputs but metadata names {len(self.info.class_names)}"
            )
        self._in_index, self._in_dtype = inp["index"], inp["dtype"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_index, self._out_dtype = out["index"], out["dtype"]
        self._out_scale, self._out_zero = out["quantization"]
        self._gun = self.info.gunshot_index
        self._logit = self.info.raw.get("output") == "logit"
        log.info("loaded model %s %s (%s) with %s", self.info.name, self.info.version, self.path, self.runtime)
        self.files: tuple[Path, ...] = (self.path,)
        """Every .tflite file that scores: this one, then its second look's in the order the metadata names them."""
        self.second_look = self._load_second_look(threads) if with_second_look else None
        """The check the metadata's ``second_look`` names, for :class:`StreamingDetector`. Its networks are loaded
        as plain networks (``with_second_look=False``): the lead model's metadata alone says how they combine."""
        self.identity = {
            "name": self.info.name,
            "version": self.info.version,
            "sha256": self.info.sha256 if len(self.files) == 1 else file_sha256(*self.files),
        }
        """What events and status quote: the sha256 covers every network that scores (:attr:`files`)."""

    def _load_second_look(self, threads: int) -> SecondLook | None:
        """``second_look`` names one network (``model``, ``sha256``) or several (``models``: a list of them, whose
        logits are averaged), the ``front_end`` they were trained for (default: the longer second-look window),
        ``from_score`` and ``weight``."""
        spec = self.info.raw.get("second_look")
        if spec is None:
            return None
        meta_file = metadata_path(self.path)
        try:
            members = spec.get("models", [spec])
            named = [(self.path.parent / str(m["model"]), str(m["sha256"])) for m in members]
            from_score, weight = float(spec["from_score"]), float(spec["weight"])
            front_end = FrontEndParams.from_dict(spec["front_end"]) if "front_end" in spec else second_look_front_end()
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model metadata {meta_file}: second_look lacks or garbles field {exc}") from None
        if not named:
            raise ModelError(f"model metadata {meta_file}: second_look names no model")
        if not (0.0 <= from_score <= 1.0 and 0.0 <= weight <= 1.0):
            raise ModelError(f"model metadata {meta_file}: second_look from_score and weight must lie in 0..1")
        models = []
        for path, sha256 in named:
            if not path.is_file():
                raise ModelError(
                    f"second-look network {path} (named in {meta_file}) not found: install a model's files together, "
                    f"{self.path.name} with every network its metadata names"
                )
            model = TfliteModel(path, front_end=front_end, threads=threads, with_second_look=False)
            if model.info.sha256 != sha256:
                raise ModelError(
                    f"second-look model {path} is not the one {meta_file} names (sha256 {model.info.sha256[:12]}... "
                    f"instead of {sha256[:12]}...); reinstall the model files together"
                )
            models.append(model)
        self.files = (self.path, *(m.path for m in models))
        scorer: Scorer = models[0] if len(models) == 1 else MeanLogit(models)
        return SecondLook(scorer, front_end, from_score, weight)

    def predict(self, patches: FloatArray) -> FloatArray:
        scores = np.empty(len(patches), dtype=np.float32)
        for i, patch in enumerate(patches):
            x = patch[None, :, :, None]
            if self._in_dtype != np.float32:
                info = np.iinfo(self._in_dtype)
                x = np.clip(np.round(x / self._in_scale + self._in_zero), info.min, info.max)
            self._interp.set_tensor(self._in_index, x.astype(self._in_dtype))
            self._interp.invoke()
            y = self._interp.get_tensor(self._out_index)[0]
            if self._out_dtype != np.float32:
                y = (y.astype(np.float32) - self._out_zero) * self._out_scale
            scores[i] = y[self._gun]
        if self._logit:
            scores = (1.0 / (1.0 + np.exp(-scores))).astype(np.float32)
        return scores
