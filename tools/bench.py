"""Whole-pipeline CPU and memory benchmark of the unit, side by side with the peer classifiers.

Usage (from the repository root)::

    python -m tools.bench [--data ../shared/data/audio] [--peers-dir ../shared/peers]
                          [--peers-python /path/to/python] [--minutes 10] [--model models/gunshot.tflite] [--json]

What it does
------------
1. Builds two deterministic (seeded) 16 kHz int16 streams of ``--minutes`` each:

   * **street**: real urban ambience from the data folder (labels street, traffic, background, indoor_other, rain,
     wind; forest recordings only if the rest runs short), cut into segments of at most 90 s, each levelled to
     about -35 dBFS RMS and joined with 1 s equal-power crossfades; every 30-60 s one event (gunshot, door, car
     horn, glass, knock, dog, siren, impact) is mixed in at -18 to -6 dBFS peak. Without the data folder the
     project's synthetic demo scene (``edge.scene.compose.demo_scene``) is used, if it exists.
   * **impulse-dense**: fireworks, construction, knock and glass clips laid back to back in two overlaid layers,
     so the onset gate fires many times a second.

   ``--synthetic`` replaces both by seeded noise with decaying noise bursts (for tests; not a realistic scene).
   Each stream is written to a temporary WAV file, which the unit process and the peers read.

2. Runs the unit pipeline in a fresh subprocess pinned to one core (``os.sched_setaffinity``) that imports only
   ``edge``, loads the model (one interpreter thread) and feeds the WAV to ``StreamingDetector`` in 100 ms chunks
   (1,600 samples) read with the stdlib ``wave`` module, as a microphone would deliver them; the stream is never
   held in memory, so the peak RSS (``ru_maxrss``) is that of a unit process. CPU is ``time.process_time()``
   around the chunk loop only (model load and warm-up excluded); the cost of reading the WAV is measured in a
   separate pass and subtracted (reported as ``io_ms_per_s``). The same process then times the onset gate alone
   over the stream, and the per-window cost of the log-mel front end and of one model invocation. The best
   (lowest) of ``--repeat`` passes is reported.

3. Runs each peer runner (YAMNet, EfficientAT, BirdNET when installed) once per stream WAV with ``--threads 1
   --json``, pinned to the same core, with the peers' own Python. Their JSON ``summary`` line gives wall seconds
   per second of audio for the model alone and for decode + resample + features + model; pinned to one core with
   one thread, wall time is close to CPU time. Process CPU time and peak RSS of each peer process come from
   ``os.wait4`` (they include interpreter start-up, imports, model load and the whole file held in memory).

4. Runs the unit once more without pinning (``--no-deployed`` skips it), as systemd starts it: every core is
   visible, so numpy's OpenBLAS sizes its thread pool to all cores and threads the log-mel matrix product;
   ``process_time`` then counts every thread's CPU, spinning included.

Raspberry Pi estimate (an estimate, not a measurement)
------------------------------------------------------
No Pi is available and this VM exposes no hardware counters (``perf stat`` reports cycles/instructions as not
supported), so the Pi cost is the x86 cost measured here times an assumed per-core slowdown:

* Pi 4 (Cortex-A72, 1.5-1.8 GHz): 4-6x slower per core than one core of this x86 server. Source: public
  single-core Geekbench 5/6 results (Pi 4 around 1/4-1/5 of a current server/desktop core), widened because the
  A72 has no int8 dot-product instructions (XNNPACK int8 convolutions gain less than the average workload).
* Pi 5 (Cortex-A76, 2.4 GHz): 2-3x slower per core (same source; the A76 has the dot-product instructions).

The impulse-dense stream gives the realistic worst case; the report also gives the cost at the gate's ceiling
(one candidate per refractory period, 33 per second), which no stream can exceed.
Real-time margin = 1000 ms / estimated Pi ms per second of audio (how many times faster than real time).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("tools.bench")

REPO = Path(__file__).resolve().parents[1]
SR = 16_000
CHUNK = 1_600
"""Samples per microphone chunk (100 ms), as on the unit."""
SEED = 20_240_601
TARGET_MS_PER_S = 0.5
TARGET_RSS_MB = 80.0
GATE_CEILING_PER_S = 1.0 / 0.03
"""Most candidates the gate can emit per second (default refractory period 30 ms)."""
PI_FACTORS: dict[str, tuple[float, float]] = {
    "pi4_cortex_a72": (4.0, 6.0),
    "pi5_cortex_a76": (2.0, 3.0),
}
"""Assumed x86 core -> Pi core slowdown (low, high); see the module docstring for the source."""

AMBIENCE_LABELS = ("street", "traffic", "background", "indoor_other", "rain", "wind")
EVENT_LABELS = ("gunshot", "door", "car_horn", "glass", "knock", "dog", "siren", "impact")
DENSE_LABELS = ("fireworks", "construction", "knock", "glass")
PEERS = (("YAMNet", "run_yamnet.py"), ("EfficientAT", "run_efficientat.py"), ("BirdNET", "run_birdnet.py"))

FloatArray = npt.NDArray[np.float32]
Int16Array = npt.NDArray[np.int16]


# --------------------------------------------------------------------------------------------------------------
# Stream synthesis
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Stream:
    name: str
    samples: Int16Array
    source: str
    """Where the audio came from: data, demo_scene or synthetic."""
    events: int = 0
    """Events mixed in (street) or clips laid down (impulse-dense)."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / SR


def resample(x: FloatArray, sr_in: int, sr_out: int = SR) -> FloatArray:
    """Band-limited resampling through the FFT (whole clip at once; clips here are at most 90 s)."""
    if sr_in == sr_out or len(x) == 0:
        return x.astype(np.float32)
    n_out = max(1, round(len(x) * sr_out / sr_in))
    spectrum = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n_out) * (n_out / len(x))
    return out.astype(np.float32)


def read_manifest(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "manifest.tsv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    seen: set[str] = set()
    unique = []
    for row in rows:  # a few paths are listed twice (two origins rebuilt into one file)
        if row["path"] not in seen:
            seen.add(row["path"])
            unique.append(row)
    return unique


def load_clip(path: Path, max_s: float, rng: np.random.Generator) -> FloatArray:
    """At most ``max_s`` seconds of a file from a random start, mono float32 at 16 kHz."""
    import soundfile as sf

    info = sf.info(str(path))
    want = min(info.frames, round(max_s * info.samplerate))
    start = int(rng.integers(0, info.frames - want + 1))
    data, sr = sf.read(str(path), start=start, frames=want, dtype="float32", always_2d=True)
    return resample(data.mean(axis=1).astype(np.float32), int(sr))


def scale_rms(x: FloatArray, dbfs: float) -> FloatArray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return x * np.float32(10 ** (dbfs / 20) / rms) if rms > 0 else x


def scale_peak(x: FloatArray, dbfs: float) -> FloatArray:
    peak = float(np.abs(x).max()) if len(x) else 0.0
    return x * np.float32(10 ** (dbfs / 20) / peak) if peak > 0 else x


def lay_with_crossfades(clips: Iterator[FloatArray], n: int, fade: int) -> tuple[FloatArray, int]:
    """Joins clips end to end with equal-power crossfades of ``fade`` samples until ``n`` samples are filled."""
    out = np.zeros(n, dtype=np.float32)
    ramp = np.sqrt(np.linspace(0.0, 1.0, fade, dtype=np.float32))
    pos, used = 0, 0
    for clip in clips:
        if len(clip) <= 2 * fade:
            continue
        start = max(pos - fade, 0)
        piece = clip[: n - start].copy()
        if start > 0:
            k = min(fade, len(piece))
            out[start : start + k] *= ramp[::-1][:k]
            piece[:k] *= ramp[:k]
        out[start : start + len(piece)] += piece
        pos, used = start + len(piece), used + 1
        if pos >= n:
            return out, used
    raise ValueError(f"not enough audio: filled {pos / SR:.0f} s of {n / SR:.0f} s")


def to_int16(x: FloatArray) -> Int16Array:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _cycle_rows(rows: list[dict[str, str]], rng: np.random.Generator) -> Iterator[dict[str, str]]:
    while True:
        for i in rng.permutation(len(rows)):
            yield rows[int(i)]


def street_from_data(data_dir: Path, seconds: float, rng: np.random.Generator) -> Stream:
    rows = read_manifest(data_dir)
    ambience = [r for r in rows if r["label"] in AMBIENCE_LABELS and r["source"] != "forest"]
    if sum(float(r["duration_s"]) for r in ambience) < seconds * 1.2:
        ambience += [r for r in rows if r["label"] in AMBIENCE_LABELS and r["source"] == "forest"]

    def segments() -> Iterator[FloatArray]:
        for row in _cycle_rows(ambience, rng):
            clip = load_clip(data_dir / row["path"], 90.0, rng)
            yield scale_rms(clip, float(rng.uniform(-39.0, -31.0)))

    n = math.ceil(seconds * SR)
    bed, _ = lay_with_crossfades(segments(), n, SR)
    by_label = {lab: [r for r in rows if r["label"] == lab and r["source"] != "forest"] for lab in EVENT_LABELS}
    labels = [lab for lab in EVENT_LABELS if by_label[lab]]
    t, events = float(rng.uniform(5.0, 20.0)), 0
    while labels and t < seconds - 5.0:
        choices = by_label[labels[events % len(labels)]]
        row = choices[int(rng.integers(len(choices)))]
        clip = scale_peak(load_clip(data_dir / row["path"], 4.0, rng), float(rng.uniform(-18.0, -6.0)))
        start = round(t * SR)
        clip = clip[: n - start]
        bed[start : start + len(clip)] += clip
        events += 1
        t += float(rng.uniform(30.0, 60.0))
    return Stream("street", to_int16(bed), "data", events)


def dense_from_data(data_dir: Path, seconds: float, rng: np.random.Generator) -> Stream:
    rows = [r for r in read_manifest(data_dir) if r["label"] in DENSE_LABELS]
    if not rows:
        raise ValueError(f"no {'/'.join(DENSE_LABELS)} clips in {data_dir}")

    def clips() -> Iterator[FloatArray]:
        for row in _cycle_rows(rows, rng):
            yield scale_peak(load_clip(data_dir / row["path"], 5.0, rng), float(rng.uniform(-20.0, -3.0)))

    n = math.ceil(seconds * SR)
    first, used_a = lay_with_crossfades(clips(), n, SR // 100)
    second, used_b = lay_with_crossfades(clips(), n, SR // 100)
    mix = first + np.roll(second, n // 3) * np.float32(0.7)
    return Stream("impulse-dense", to_int16(scale_peak(mix, -1.0)), "data", used_a + used_b)


def _bursts(n: int, per_s: float, rng: np.random.Generator) -> tuple[FloatArray, int]:
    """Decaying broadband noise bursts (about 50 ms) at random times, ``per_s`` on average."""
    out = np.zeros(n, dtype=np.float32)
    count = max(1, round(n / SR * per_s))
    decay = np.exp(-np.arange(SR // 5) / (0.012 * SR)).astype(np.float32)
    for start in np.sort(rng.integers(0, max(n - len(decay), 1), count)):
        burst = rng.standard_normal(len(decay)).astype(np.float32) * decay
        burst = scale_peak(burst, float(rng.uniform(-20.0, -3.0)))[: n - int(start)]
        out[int(start) : int(start) + len(burst)] += burst
    return out, count


def synthetic_stream(name: str, seconds: float, rng: np.random.Generator) -> Stream:
    """Seeded stand-in scene for tests: low-passed noise bed plus noise bursts (sparse or dense)."""
    n = math.ceil(seconds * SR)
    white = rng.standard_normal(n).astype(np.float32)
    bed = scale_rms(np.convolve(white, np.ones(8) / 8, mode="same").astype(np.float32), -40.0)
    per_s = 10.0 if name == "impulse-dense" else max(1.0 / 45.0, 3.0 / seconds)
    bursts, count = _bursts(n, per_s, rng)
    return Stream(name, to_int16(bed + bursts), "synthetic", count)


def street_from_demo_scene(seconds: float, seed: int) -> Stream | None:
    """The project's synthetic demo scene (``edge.scene.compose.demo_scene``); None when it is not there."""
    try:
        from edge.scene.compose import demo_scene
    except ImportError as exc:
        log.warning("no data folder and no edge.scene.compose.demo_scene (%s): street stream skipped", exc)
        return None
    duration = max(seconds, 60.0)  # the scene needs about 45 s for its ten events
    try:
        scene = demo_scene(seed=seed, duration_s=duration)
    except (TypeError, ValueError) as exc:
        log.warning("edge.scene.compose.demo_scene(duration_s=%s) failed (%s): street stream skipped", duration, exc)
        return None
    samples = np.asarray(scene.samples, dtype=np.int16)
    return Stream("street", samples, "demo_scene", len(scene.events))


def build_streams(data_dir: Path, seconds: float, synthetic: bool) -> list[Stream]:
    if synthetic:
        return [
            synthetic_stream(name, seconds, np.random.default_rng(SEED + i))
            for i, name in enumerate(("street", "impulse-dense"))
        ]
    streams: list[Stream] = []
    if (data_dir / "manifest.tsv").is_file():
        streams.append(street_from_data(data_dir, seconds, np.random.default_rng(SEED)))
        streams.append(dense_from_data(data_dir, seconds, np.random.default_rng(SEED + 1)))
        return streams
    log.warning("data folder %s not found: falling back to the demo scene (no impulse-dense stream)", data_dir)
    demo = street_from_demo_scene(seconds, SEED)
    return [demo] if demo else []


def write_wav(path: Path, samples: Int16Array) -> None:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(SR)
        wf.writeframes(samples.astype("<i2").tobytes())


# --------------------------------------------------------------------------------------------------------------
# The unit process (runs in a pinned subprocess: python -m tools.bench --unit-child SPEC.json)
# --------------------------------------------------------------------------------------------------------------


def _rss_now_mb() -> float:
    """Current resident set (VmRSS) in MB, or NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


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
    info = tflite.info
    return tflite, info.threshold, f"{info.name} {info.version} ({Path(model).name}, sha256 {info.sha256[:12]})"


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(cpu seconds, wall seconds, result) of ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def _run_pipeline(wav: str, scorer: Any, threshold: float) -> tuple[int, int]:
    from edge.detect.detector import StreamingDetector

    detector = StreamingDetector(scorer, threshold)
    detections = 0
    for chunk in _wav_chunks(wav):
        detections += len(detector.process(chunk))
    detections += len(detector.flush())
    return detector.stats.candidates, detections


def _run_gate(wav: str) -> int:
    from edge.dsp.onset import OnsetGate

    gate = OnsetGate()
    return sum(len(gate.process(chunk)) for chunk in _wav_chunks(wav))


def _run_io(wav: str) -> int:
    return sum(len(chunk) for chunk in _wav_chunks(wav))


def _per_window_costs(wav: str, scorer: Any, n: int = 100) -> tuple[float, float]:
    """CPU ms of one log-mel patch and of one model call (batch of one, the usual case), over ``n`` windows."""
    from edge.dsp.logmel import LogMel

    logmel = LogMel()
    size = logmel.params.window_samples
    with wave.open(wav, "rb") as wf:
        head = np.frombuffer(wf.readframes(size * 4), dtype="<i2")
    starts = np.linspace(0, max(len(head) - size, 0), n).astype(int)
    windows = [head[s : s + size] for s in starts if s + size <= len(head)]
    if not windows:
        return float("nan"), float("nan")
    cpu_mel, _, patches = _timed(lambda: [logmel.patches(w[None, :]) for w in windows])
    cpu_model, _, _ = _timed(lambda: [scorer.predict(p) for p in patches])
    return 1000.0 * cpu_mel / len(windows), 1000.0 * cpu_model / len(windows)


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
    mel_ms, model_ms = _per_window_costs(wav, scorer)
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
        "logmel_ms_per_window": mel_ms,
        "model_ms_per_window": model_ms,
        "rss_start_mb": rss_start,
        "rss_after_imports_mb": rss_imports,
        "rss_after_model_mb": rss_model,
        "peak_rss_mb": peak_rss,
    }
    if spec.get("profile"):
        result["profile"] = _profile_pipeline(wav, scorer, threshold, int(spec.get("profile_top", 15)))
    return result


# --------------------------------------------------------------------------------------------------------------
# Subprocesses (unit and peers), pinned, with their own CPU time and peak RSS from wait4
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ProcResult:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float
    peak_rss_mb: float


def run_pinned(cmd: Sequence[str], cpu: int | None, timeout_s: float, cwd: Path | None = None) -> ProcResult:
    """Runs ``cmd`` pinned to core ``cpu`` (None: not pinned) from its start, so libraries that size thread
    pools at load time see one core; CPU time and peak RSS are that process's own (``os.wait4``)."""

    def pin() -> None:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, preexec_fn=pin)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcResult(
            proc.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
        )


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
    return {
        **raw,
        "cpu_ms_per_s": cpu,
        "wall_ms_per_s": max(raw["wall_s"] - raw["io_cpu_s"], 0.0) * per_s,
        "io_ms_per_s": raw["io_cpu_s"] * per_s,
        "candidates_per_min": raw["candidates"] * 60.0 / sec,
        "windows_per_s": windows_per_s,
        "breakdown_ms_per_s": {
            "gate": gate,
            "logmel": mel,
            "model": model,
            "rest": cpu - gate - mel - model,
        },
    }


def pi_estimate(unit: dict[str, Any]) -> dict[str, Any]:
    """Estimated Pi ms per s of audio and real-time margin, at this stream's rate and at the gate's ceiling."""
    per_window = unit["logmel_ms_per_window"] + unit["model_ms_per_window"]
    no_windows = unit["cpu_ms_per_s"] - per_window * unit["windows_per_s"]
    ceiling = no_windows + per_window * GATE_CEILING_PER_S
    out: dict[str, Any] = {"x86_ms_per_s": unit["cpu_ms_per_s"], "x86_ms_per_s_at_gate_ceiling": ceiling}
    for board, (lo, hi) in PI_FACTORS.items():
        out[board] = {
            "factor": [lo, hi],
            "ms_per_s": [unit["cpu_ms_per_s"] * lo, unit["cpu_ms_per_s"] * hi],
            "realtime_margin": [1000.0 / (unit["cpu_ms_per_s"] * hi), 1000.0 / (unit["cpu_ms_per_s"] * lo)],
            "ms_per_s_at_gate_ceiling": [ceiling * lo, ceiling * hi],
            "realtime_margin_at_gate_ceiling": [1000.0 / (ceiling * hi), 1000.0 / (ceiling * lo)],
        }
    return out


def _peer_summary(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "summary" in obj:
            return dict(obj["summary"])
    raise ValueError("no JSON summary line in the peer's output")


def measure_peer(script: Path, python: str, wav: Path, seconds: float, cpu: int, timeout_s: float) -> dict[str, Any]:
    proc = run_pinned([python, str(script), "--threads", "1", "--json", str(wav)], cpu, timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    summary = _peer_summary(proc.stdout)
    return {
        "model_ms_per_s": 1000.0 * float(summary["model_s_per_audio_s"]),
        "total_ms_per_s": 1000.0 * float(summary["total_s_per_audio_s"]),
        "process_cpu_ms_per_s": 1000.0 * proc.cpu_s / seconds,
        "peak_rss_mb": proc.peak_rss_mb,
    }


def measure_peers(args: argparse.Namespace, wavs: dict[str, tuple[Path, float]]) -> dict[str, dict[str, Any]]:
    peers_dir = Path(args.peers_dir)
    results: dict[str, dict[str, Any]] = {}
    for name, script in PEERS:
        if name == "BirdNET" and args.no_birdnet:
            continue
        results[name] = {}
        for stream, (wav, seconds) in wavs.items():
            log.info("peer %s on %s ...", name, stream)
            try:
                results[name][stream] = measure_peer(
                    peers_dir / script, args.peers_python, wav, seconds, args.cpu, args.timeout
                )
            except (RuntimeError, ValueError, OSError, KeyError) as exc:
                log.warning("peer %s failed on %s: %s", name, stream, exc)
                results[name][stream] = {"error": str(exc)}
    return results


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


def _f(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_report(report: dict[str, Any]) -> str:
    lines = [f"polewatch bench - model: {report['model']}", f"machine: {report['machine']}", ""]
    for name, s in report["streams"].items():
        lines.append(f"stream {name}: {s['seconds']:.0f} s from {s['source']}, {s['events']} events/clips")
    header = (
        f"{'system':<12} {'stream':<14} {'ms CPU/s':>9} {'model ms/s':>10} {'wall ms/s':>9} {'RSS MB':>7} "
        f"{'cand/min':>8} {'win/s':>6} {'detect':>6} {'peer/pw':>8}"
    )
    lines += ["", header, "-" * len(header)]
    unit = report["polewatch"]
    for stream, u in unit.items():
        lines.append(
            f"{'polewatch':<12} {stream:<14} {_f(u['cpu_ms_per_s'], 3):>9} "
            f"{_f(u['breakdown_ms_per_s']['model'], 3):>10} {_f(u['wall_ms_per_s'], 3):>9} "
            f"{_f(u['peak_rss_mb'], 1):>7} {_f(u['candidates_per_min'], 1):>8} "
            f"{_f(u['windows_per_s'], 2):>6} {u['detections']:>6} {'1.0':>8}"
        )
    for peer, per_stream in report["peers"].items():
        for stream, p in per_stream.items():
            if "error" in p:
                lines.append(f"{peer:<12} {stream:<14} failed: {p['error'][:70]}")
                continue
            ratio = p["total_ms_per_s"] / unit[stream]["cpu_ms_per_s"] if stream in unit else float("nan")
            lines.append(
                f"{peer:<12} {stream:<14} {_f(p['total_ms_per_s'], 3):>9} {_f(p['model_ms_per_s'], 3):>10} "
                f"{_f(p['total_ms_per_s'], 3):>9} {_f(p['peak_rss_mb'], 1):>7} {'-':>8} {'-':>6} "
                f"{'-':>6} {_f(ratio, 1) + 'x':>8}"
            )
    lines += _notes(report)
    return "\n".join(lines)


def _notes(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "polewatch: CPU time of the chunk loop in a fresh process pinned to one core (WAV reading "
        "subtracted); RSS = peak of that process.",
        "peers: their own timers (pinned, 1 thread: wall ~ CPU); 'ms CPU/s' = decode+resample+features+model,",
        "       RSS includes the whole file held in memory; peer/pw = peer ms per s / polewatch ms per s.",
        "",
    ]
    for stream, u in report["polewatch"].items():
        b = u["breakdown_ms_per_s"]
        lines.append(
            f"breakdown {stream}: gate {_f(b['gate'], 3)} + log-mel {_f(b['logmel'], 3)} + model "
            f"{_f(b['model'], 3)} + rest {_f(b['rest'], 3)} ms/s; per window: log-mel "
            f"{_f(u['logmel_ms_per_window'], 3)} ms, model {_f(u['model_ms_per_window'], 3)} ms; "
            f"RSS after imports {_f(u['rss_after_imports_mb'], 1)} MB, after model "
            f"{_f(u['rss_after_model_mb'], 1)} MB"
        )
        if "deployed_cpu_ms_per_s" in u:
            lines.append(
                f"  as deployed (not pinned, every core visible, so numpy's OpenBLAS threads the log-mel "
                f"matmul): {_f(u['deployed_cpu_ms_per_s'], 3)} ms CPU/s, log-mel "
                f"{_f(u['deployed_logmel_ms_per_window'], 3)} ms per window"
            )
    for stream, verdict in report["targets"].items():
        lines.append(f"target {stream}: {verdict}")
    for stream, est in report["pi_estimate"].items():
        lines.append(f"Pi estimate {stream} (x86 x assumed factor, NOT measured):")
        for board in PI_FACTORS:
            e = est[board]
            lines.append(
                f"  {board} (x{e['factor'][0]:g}-{e['factor'][1]:g}): {_f(e['ms_per_s'][0])}-"
                f"{_f(e['ms_per_s'][1])} ms/s, real-time margin {_f(e['realtime_margin'][0], 0)}-"
                f"{_f(e['realtime_margin'][1], 0)}x; at the gate ceiling ({GATE_CEILING_PER_S:.0f} "
                f"windows/s) {_f(e['ms_per_s_at_gate_ceiling'][0])}-{_f(e['ms_per_s_at_gate_ceiling'][1])} "
                f"ms/s, margin {_f(e['realtime_margin_at_gate_ceiling'][0], 0)}-"
                f"{_f(e['realtime_margin_at_gate_ceiling'][1], 0)}x"
            )
    if report.get("profile"):
        lines += ["", f"profile (cProfile, {report['profile_stream']} stream, top by own time):"]
        lines += [
            f"  {r['tottime_s']:8.3f} s own {r['cumtime_s']:8.3f} s cum {r['calls']:>8} calls  {r['function']}"
            for r in report["profile"]
        ]
    return lines


def target_verdicts(unit: dict[str, dict[str, Any]]) -> dict[str, str]:
    out = {}
    for stream, u in unit.items():
        cpu_ok = u["cpu_ms_per_s"] <= TARGET_MS_PER_S
        rss_ok = u["peak_rss_mb"] <= TARGET_RSS_MB
        applies = " (the CPU target is set for the street stream)" if stream != "street" else ""
        out[stream] = (
            f"CPU {u['cpu_ms_per_s']:.3f} ms/s {'meets' if cpu_ok else 'MISSES'} <= {TARGET_MS_PER_S}"
            f"{applies}; RSS {u['peak_rss_mb']:.1f} MB {'meets' if rss_ok else 'MISSES'} "
            f"<= {TARGET_RSS_MB:.0f}"
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------


def _default_peers_python() -> str:
    env = os.environ.get("PEERS_PYTHON")
    if env:
        return env
    conventional = Path("/tmp/peers-venv/bin/python")  # noqa: S108  (the peers README's set-up)
    return str(conventional) if conventional.exists() else sys.executable


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "audio"), help="data folder")
    p.add_argument("--peers-dir", default=str(REPO.parent / "shared" / "peers"), help="peer runners folder")
    p.add_argument("--peers-python", default=_default_peers_python(), help="python of the peers' venv")
    p.add_argument("--no-peers", action="store_true", help="measure polewatch only")
    p.add_argument("--no-birdnet", action="store_true", help="skip BirdNET (slowest peer)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of each stream (default 10)")
    p.add_argument(
        "--model",
        default=str(REPO / "models" / "gunshot.tflite"),
        help="classifier .tflite (with its .json), or 'fake' for no classifier",
    )
    p.add_argument("--synthetic", action="store_true", help="seeded synthetic streams instead of the data")
    p.add_argument("--cpu", type=int, default=0, help="core to pin every measured process to (default 0)")
    p.add_argument("--repeat", type=int, default=1, help="timed passes per stream; the fastest counts")
    p.add_argument(
        "--no-deployed",
        action="store_true",
        help="skip the second, unpinned run of the unit (as systemd starts it: all cores visible)",
    )
    p.add_argument("--profile", action="store_true", help="also cProfile the pipeline on the street stream")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for each subprocess")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--unit-child", metavar="SPEC", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    if args.model != "fake" and not Path(args.model).is_file():
        raise FileNotFoundError(f"model {args.model} not found: pass --model PATH (or 'fake' for no classifier)")
    seconds = args.minutes * 60.0
    log.info("building %.1f-minute streams ...", args.minutes)
    streams = build_streams(Path(args.data), seconds, args.synthetic)
    if not streams:
        raise RuntimeError("no stream could be built (no data folder, no demo scene)")
    report: dict[str, Any] = {"machine": _machine(), "streams": {}, "polewatch": {}, "peers": {}}
    with tempfile.TemporaryDirectory(prefix="polewatch-bench-") as tmp:
        wavs: dict[str, tuple[Path, float]] = {}
        for s in streams:
            wav = Path(tmp) / f"{s.name}.wav"
            write_wav(wav, s.samples)
            wavs[s.name] = (wav, s.seconds)
            report["streams"][s.name] = {"seconds": s.seconds, "source": s.source, "events": s.events}
        del streams
        for name, (wav, _) in wavs.items():
            log.info("polewatch on %s ...", name)
            profile = args.profile and name == "street"
            unit = measure_unit(wav, args.model, args.cpu, args.repeat, profile, args.timeout)
            if not args.no_deployed:
                log.info("polewatch on %s, as deployed (not pinned) ...", name)
                deployed = measure_unit(wav, args.model, None, 1, False, args.timeout)
                unit["deployed_cpu_ms_per_s"] = deployed["cpu_ms_per_s"]
                unit["deployed_logmel_ms_per_window"] = deployed["logmel_ms_per_window"]
            report["polewatch"][name] = unit
            if profile:
                report["profile"] = report["polewatch"][name].pop("profile")
                report["profile_stream"] = name
        if not args.no_peers and Path(args.peers_dir).is_dir():
            report["peers"] = measure_peers(args, wavs)
        elif not args.no_peers:
            log.warning("peers folder %s not found: peers skipped", args.peers_dir)
    report["model"] = next(iter(report["polewatch"].values()))["model"]
    report["targets"] = target_verdicts(report["polewatch"])
    report["pi_estimate"] = {name: pi_estimate(u) for name, u in report["polewatch"].items()}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.unit_child:
        result = unit_child(json.loads(Path(args.unit_child).read_text()))
        print(json.dumps(result))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run_bench(args)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
