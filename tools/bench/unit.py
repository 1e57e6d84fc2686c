"""The unit process: runs the real pipeline in a fresh subprocess (``python -m tools.bench --unit-child SPEC``)
pinned to one core, and measures its CPU time and memory.

The subprocess imports this module before it measures its own RSS, so it imports only numpy, the standard library
and ``edge.audio.source`` at module level; the pipeline is imported inside the child's functions.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio.source import SAMPLE_RATE as SR
from edge.audio.source import Int16Array
from tools.bench.proc import REPO, run_pinned

CHUNK = 1_600
"""Samples per microphone chunk (100 ms), as on the unit."""


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB, or NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _rss_now_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    """Peak resident set of this process image. Not ``ru_maxrss``: Linux carries that across exec from the forked
    parent, so a bench parent holding large streams would show up as the unit's peak."""
    peak = _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if math.isnan(peak) else peak  # KiB on Linux


def _wav_chunks(path: str) -> Iterator[Int16Array]:
    with wave.open(path, "rb") as wf:
        if (wf.getnchannels(), wf.getsampwidth(), wf.getframerate()) != (1, 2, SR):
            raise ValueError(f"{path}: expected mono 16-bit {SR} Hz")
        while data := wf.readframes(CHUNK):
            yield np.frombuffer(data, dtype="<i2")


def _load_scorer(model: str) -> tuple[Any, float, str]:
    """(scorer, threshold, description); ``fake`` is the RecordingScorer (no classifier cost)."""
    if model == "fake":
        from edge.detect.fake import RecordingScorer

        return RecordingScorer(score=0.0), 0.5, "fake (RecordingScorer, no classifier)"
    from edge.detect.runtime import TfliteModel

    tflite = TfliteModel(model, threads=1)
    info, networks = tflite.info, len(tflite.files)
    what = f"{Path(model).name}" + (f" + {networks - 1} second-look network(s)" if networks > 1 else "")
    return tflite, info.threshold, f"{info.name} {info.version} ({what}, sha256 {tflite.identity['sha256'][:12]})"


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(cpu seconds, wall seconds, result) of ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def _run_pipeline(wav: str, scorer: Any, threshold: float) -> tuple[int, int, int]:
    from edge.detect.detector import StreamingDetector

    detector = StreamingDetector(scorer, threshold)
    detections = 0
    for chunk in _wav_chunks(wav):
        detections += len(detector.process(chunk))
    detections += len(detector.flush())
    return detector.stats.candidates, detections, detector.stats.second_looks


def _run_gate(wav: str) -> int:
    """The gate alone, fed as the detector feeds it: batches of about GATE_BATCH samples, not single chunks."""
    from edge.detect.detector import GATE_BATCH
    from edge.dsp.onset import OnsetGate

    gate, found, pending, held = OnsetGate(), 0, [], 0
    for chunk in _wav_chunks(wav):
        pending.append(chunk)
        held += len(chunk)
        if held >= GATE_BATCH:
            found += len(gate.process(np.concatenate(pending)))
            pending, held = [], 0
    if pending:
        found += len(gate.process(np.concatenate(pending)))
    return found


def _run_io(wav: str) -> int:
    return sum(len(chunk) for chunk in _wav_chunks(wav))


def _per_window_costs(wav: str, scorer: Any, n: int = 100) -> tuple[float, float, float]:
    """CPU ms of one log-mel patch, of one model call (batch of one, the usual case) and of one second look (its
    networks, and its own log-mel when its window differs; 0 without one), over ``n`` windows."""
    from edge.dsp.logmel import LogMel

    logmel = LogMel()
    look = getattr(scorer, "second_look", None)
    size = max(logmel.params.window_samples, look.front_end.window_samples if look else 0)
    with wave.open(wav, "rb") as wf:
        head = np.frombuffer(wf.readframes(size * 4), dtype="<i2")
    starts = np.linspace(0, max(len(head) - size, 0), n).astype(int)
    windows = [head[s : s + size] for s in starts if s + size <= len(head)]
    if not windows:
        return float("nan"), float("nan"), float("nan")
    first = [w[: logmel.params.window_samples] for w in windows]
    cpu_mel, _, patches = _timed(lambda: [logmel.patches(w[None, :]) for w in first])
    cpu_model, _, _ = _timed(lambda: [scorer.predict(p) for p in patches])
    cpu_look = 0.0
    if look is not None:
        if look.front_end == logmel.params:
            cpu_look = _timed(lambda: [look.scorer.predict(p) for p in patches])[0]
        else:
            other = LogMel(look.front_end)
            cpu_look = _timed(lambda: [look.scorer.predict(other.patches(w[None, :])) for w in windows])[0]
    n_windows = len(windows) / 1000.0
    return cpu_mel / n_windows, cpu_model / n_windows, cpu_look / n_windows


def _profile_pipeline(wav: str, scorer: Any, threshold: float, top: int) -> list[dict[str, Any]]:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(_run_pipeline, wav, scorer, threshold)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(filename).name}:{line}({func})" if line else func
        rows.append({"function": where, "calls": ncalls, "tottime_s": tottime, "cumtime_s": cumtime})
    rows.sort(key=lambda r: -float(r["tottime_s"]))
    return rows[:top]


def unit_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Body of the pinned unit subprocess; returns the measurements as a JSON-able dict."""
    if spec["cpu"] is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(spec["cpu"])})
    rss_start = _rss_now_mb()
    import edge.detect.detector  # noqa: F401  (the unit's own imports: numpy and the pipeline)

    rss_imports = _rss_now_mb()
    scorer, threshold, model_desc = _load_scorer(str(spec["model"]))
    rss_model = _rss_now_mb()
    wav = str(spec["wav"])
    _per_window_costs(wav, scorer, n=5)  # warm-up: the first invocations allocate
    best: tuple[float, float, Any] | None = None
    for _ in range(int(spec["repeat"])):
        run = _timed(lambda: _run_pipeline(wav, scorer, threshold))
        best = run if best is None or run[0] < best[0] else best
    assert best is not None
    peak_rss = _peak_rss_mb()
    io_cpu = min(_timed(lambda: _run_io(wav))[0] for _ in range(int(spec["repeat"])))
    gate_runs = [_timed(lambda: _run_gate(wav)) for _ in range(int(spec["repeat"]))]
    gate_cpu = min(r[0] for r in gate_runs)
    mel_ms, model_ms, look_ms = _per_window_costs(wav, scorer)
    with wave.open(wav, "rb") as wf:
        seconds = wf.getnframes() / SR
    result: dict[str, Any] = {
        "model": model_desc,
        "seconds": seconds,
        "cpu_s": best[0],
        "wall_s": best[1],
        "io_cpu_s": io_cpu,
        "gate_cpu_s": gate_cpu,
        "gate_candidates": gate_runs[0][2],
        "candidates": best[2][0],
        "detections": best[2][1],
        "second_looks": best[2][2],
        "logmel_ms_per_window": mel_ms,
        "model_ms_per_window": model_ms,
        "second_look_ms_per_window": look_ms,
        "rss_start_mb": rss_start,
        "rss_after_imports_mb": rss_imports,
        "rss_after_model_mb": rss_model,
        "peak_rss_mb": peak_rss,
    }
    if spec.get("profile"):
        result["profile"] = _profile_pipeline(wav, scorer, threshold, int(spec.get("profile_top", 15)))
    return result


def measure_unit(
    wav: Path, model: str, cpu: int | None, repeat: int, profile: bool, timeout_s: float
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"wav": str(wav), "model": model, "cpu": cpu, "repeat": repeat, "profile": profile}, fh)
        spec_path = fh.name
    try:
        cmd = [sys.executable, "-m", "tools.bench", "--unit-child", spec_path]
        proc = run_pinned(cmd, cpu, timeout_s, cwd=REPO)
    finally:
        os.unlink(spec_path)
    if proc.returncode != 0:
        raise RuntimeError(f"unit subprocess failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return derive_unit(json.loads(proc.stdout.strip().splitlines()[-1]))


def derive_unit(raw: dict[str, Any]) -> dict[str, Any]:
    """Per-second-of-audio figures and the cost breakdown from one child's raw measurements."""
    sec = float(raw["seconds"])
    per_s = 1000.0 / sec
    cpu = max(raw["cpu_s"] - raw["io_cpu_s"], 0.0) * per_s
    gate = max(raw["gate_cpu_s"] - raw["io_cpu_s"], 0.0) * per_s
    windows_per_s = raw["candidates"] / sec
    mel = raw["logmel_ms_per_window"] * windows_per_s
    model = raw["model_ms_per_window"] * windows_per_s
    looks = raw.get("second_look_ms_per_window", 0.0) * raw["second_looks"] / sec
    return {
        **raw,
        "cpu_ms_per_s": cpu,
        "wall_ms_per_s": max(raw["wall_s"] - raw["io_cpu_s"], 0.0) * per_s,
        "io_ms_per_s": raw["io_cpu_s"] * per_s,
        "candidates_per_min": raw["candidates"] * 60.0 / sec,
        "second_looks_per_min": raw["second_looks"] * 60.0 / sec,
        "windows_per_s": windows_per_s,
        "breakdown_ms_per_s": {
            "gate": gate,
            "logmel": mel,
            "model": model,
            "second_looks": looks,
            "rest": cpu - gate - mel - model - looks,
        },
    }
