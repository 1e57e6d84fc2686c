"""The benchmark's deterministic (seeded) 16 kHz int16 streams: street, impulse-dense, or synthetic stand-ins."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from edge.audio.file_source import load_audio
from edge.audio.resample import float_to_int16, to_float32
from edge.audio.source import SAMPLE_RATE as SR
from edge.audio.source import Int16Array
from tools.dataset import Item, manifest_path, read_manifest

log = logging.getLogger("tools.bench")

SEED = 20_240_601
AMBIENCE_LABELS = ("street", "traffic", "background", "indoor_other", "rain", "wind")
EVENT_LABELS = ("gunshot", "door", "car_horn", "glass", "knock", "dog", "siren", "impact")
DENSE_LABELS = ("fireworks", "construction", "knock", "glass")

FloatArray = npt.NDArray[np.float32]


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


def load_clip(path: Path, max_s: float, rng: np.random.Generator) -> FloatArray:
    """At most ``max_s`` seconds of a file from a random start, mono float32 at 16 kHz (full scale ±1.0)."""
    audio = load_audio(path)
    want = min(len(audio), round(max_s * SR))
    start = int(rng.integers(0, len(audio) - want + 1))
    return to_float32(audio[start : start + want])


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


def _cycle_items(items: list[Item], rng: np.random.Generator) -> Iterator[Item]:
    while True:
        for i in rng.permutation(len(items)):
            yield items[int(i)]


def street_from_data(data_dir: Path, seconds: float, rng: np.random.Generator) -> Stream:
    items = read_manifest(data_dir)
    ambience = [it for it in items if it.label in AMBIENCE_LABELS and it.urban]
    if sum(it.duration_s for it in ambience) < seconds * 1.2:
        ambience += [it for it in items if it.label in AMBIENCE_LABELS and not it.urban]

    def segments() -> Iterator[FloatArray]:
        for item in _cycle_items(ambience, rng):
            clip = load_clip(data_dir / item.path, 90.0, rng)
            yield scale_rms(clip, float(rng.uniform(-39.0, -31.0)))

    n = math.ceil(seconds * SR)
    bed, _ = lay_with_crossfades(segments(), n, SR)
    by_label = {lab: [it for it in items if it.label == lab and it.urban] for lab in EVENT_LABELS}
    labels = [lab for lab in EVENT_LABELS if by_label[lab]]
    t, events = float(rng.uniform(5.0, 20.0)), 0
    while labels and t < seconds - 5.0:
        choices = by_label[labels[events % len(labels)]]
        item = choices[int(rng.integers(len(choices)))]
        clip = scale_peak(load_clip(data_dir / item.path, 4.0, rng), float(rng.uniform(-18.0, -6.0)))
        start = round(t * SR)
        clip = clip[: n - start]
        bed[start : start + len(clip)] += clip
        events += 1
        t += float(rng.uniform(30.0, 60.0))
    return Stream("street", float_to_int16(bed), "data", events)


def dense_from_data(data_dir: Path, seconds: float, rng: np.random.Generator) -> Stream:
    items = [it for it in read_manifest(data_dir) if it.label in DENSE_LABELS]
    if not items:
        raise ValueError(f"no {'/'.join(DENSE_LABELS)} clips in {data_dir}")

    def clips() -> Iterator[FloatArray]:
        for item in _cycle_items(items, rng):
            yield scale_peak(load_clip(data_dir / item.path, 5.0, rng), float(rng.uniform(-20.0, -3.0)))

    n = math.ceil(seconds * SR)
    first, used_a = lay_with_crossfades(clips(), n, SR // 100)
    second, used_b = lay_with_crossfades(clips(), n, SR // 100)
    mix = first + np.roll(second, n // 3) * np.float32(0.7)
    return Stream("impulse-dense", float_to_int16(scale_peak(mix, -1.0)), "data", used_a + used_b)


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
    return Stream(name, float_to_int16(bed + bursts), "synthetic", count)


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
    if manifest_path(data_dir).is_file():
        streams.append(street_from_data(data_dir, seconds, np.random.default_rng(SEED)))
        streams.append(dense_from_data(data_dir, seconds, np.random.default_rng(SEED + 1)))
        return streams
    log.warning("data folder %s not found: falling back to the demo scene (no impulse-dense stream)", data_dir)
    demo = street_from_demo_scene(seconds, SEED)
    return [demo] if demo else []


def write_wav(path: Path, samples: Int16Array) -> None:
    """16 kHz mono 16-bit PCM WAV, which the unit process reads with the stdlib ``wave`` module."""
    sf.write(str(path), samples, SR, subtype="PCM_16")
