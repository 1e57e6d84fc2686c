"""The demo street scene: ambience plus gunshot bursts and other impulses, with the ground truth.

``demo_scene(seed)`` is deterministic: the same seed gives the same samples on any machine with the same numpy
major version (it uses only ``numpy.random.Generator(PCG64)`` and FFTs). Events are spread over the scene with at
least :data:`MIN_GAP_S` of ambience between the last impulse of one and the first of the next, so bursts (burst gap
2 s) never merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.scene import sounds
from edge.scene.sounds import SR, Float64Array, Sound

GUNSHOT = "gunshot"
MIN_GAP_S = 3.0
"""Ambience between consecutive events (seconds), from the last impulse of one to the onset of the next."""
EDGE_S = 2.0
"""Ambience before the first and after the last event (seconds)."""
AMBIENCE_DBFS = -40.0
"""Overall RMS level of the street ambience (dBFS)."""
FADE_S = 0.5
"""The ambience fades in and out over this long (seconds)."""


@dataclass(frozen=True)
class SceneEvent:
    kind: str
    """``gunshot`` or the kind of non-gunshot impulse (``door_slam``, ``knocking`` ...)."""
    onset_sample: int
    """Sample index of the first impulse in the scene."""
    rounds: int
    """Impulses in the event: rounds fired for a gunshot burst, knocks, blows, claps, bounces otherwise."""
    note: str
    """Human description (weapon mode, distance, level)."""
    impulses: tuple[int, ...] = ()
    """Sample index of every impulse (``rounds`` of them)."""


@dataclass(frozen=True)
class Scene:
    samples: npt.NDArray[np.int16]
    """Mono int16 at :attr:`sample_rate`."""
    events: list[SceneEvent]
    """Ground truth in onset order."""
    seed: int
    sample_rate: int = SR

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def gunshots(self) -> list[SceneEvent]:
        return [e for e in self.events if e.kind == GUNSHOT]


Maker = Callable[[np.random.Generator], tuple[Sound, str]]


def _gun(make: Callable[..., Sound], mode: str, distance_m: tuple[float, float], peak: tuple[float, float]) -> Maker:
    def build(rng: np.random.Generator) -> tuple[Sound, str]:
        d, p = rng.uniform(*distance_m), rng.uniform(*peak)
        sound = make(rng, distance_m=d, peak_dbfs=p)
        return sound, f"{mode}, {len(sound.onsets)} round(s) at ~{d:.0f} m, peak {p:.0f} dBFS"

    return build


def _other(make: Callable[..., Sound], what: str, peak: tuple[float, float]) -> Maker:
    def build(rng: np.random.Generator) -> tuple[Sound, str]:
        p = rng.uniform(*peak)
        return make(rng, peak_dbfs=p), f"{what}, peak {p:.0f} dBFS"

    return build


EVENT_KINDS: dict[str, Maker] = {
    "gunshot/single": _gun(sounds.single_shot, "single shot", (20.0, 60.0), (-5.0, -3.0)),
    "gunshot/semi": _gun(sounds.semi_auto_burst, "semi-auto burst", (60.0, 120.0), (-10.0, -6.0)),
    "gunshot/auto": _gun(sounds.full_auto_burst, "full-auto burst", (100.0, 200.0), (-14.0, -9.0)),
    "door_slam": _other(sounds.door_slam, "house door slammed", (-12.0, -6.0)),
    "car_door": _other(sounds.car_door, "car door shut", (-14.0, -8.0)),
    "hand_claps": _other(sounds.hand_claps, "two hand claps", (-18.0, -12.0)),
    "knocking": _other(sounds.knocking, "three knocks on a door", (-14.0, -8.0)),
    "hammering": _other(sounds.hammering, "hammering a nail", (-16.0, -10.0)),
    "dropped_object": _other(sounds.dropped_object, "steel pipe dropped", (-18.0, -12.0)),
    "whoosh": _other(sounds.whoosh, "rocket whoosh, no bang", (-26.0, -20.0)),
}


def ambience(rng: np.random.Generator, n: int, car_at_s: float) -> Float64Array:
    """Street ambience at :data:`AMBIENCE_DBFS` RMS: traffic, distant voices, wind and a car passing the pole
    at ``car_at_s`` (seconds)."""
    mix = (
        sounds.traffic_rumble(rng, n)
        + 0.15 * sounds.voices(rng, n)
        + 0.4 * sounds.wind(rng, n)
        + 1.5 * sounds.passing_car(rng, n, car_at_s)
    )
    mix *= 10.0 ** (AMBIENCE_DBFS / 20.0) / float(np.sqrt(np.mean(mix**2)))
    # fading in and out keeps the onset gate quiet at the start and makes a looped replay seamless
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (FADE_S * SR))
    return mix * fade


def _layout(rng: np.random.Generator, spans: list[int], n: int) -> list[int]:
    """Start sample of each event: gaps of at least MIN_GAP_S plus a random share of the slack."""
    edge, gap = round(EDGE_S * SR), round(MIN_GAP_S * SR)
    slack = n - 2 * edge - sum(spans) - gap * (len(spans) - 1)
    if slack < 0:
        need = (2 * edge + sum(spans) + gap * (len(spans) - 1)) / SR
        raise ValueError(f"a demo scene needs at least {need:.1f} s for its {len(spans)} events")
    shares = rng.dirichlet(np.ones(len(spans) + 1)) * slack
    starts, at = [], edge + int(shares[0])
    for span, share in zip(spans, shares[1:], strict=True):
        starts.append(at)
        at += span + gap + int(share)
    return starts


def demo_scene(seed: int = 0, duration_s: float = 60.0) -> Scene:
    """The demo street scene: three gunshot bursts (single, semi-auto, full-auto) and seven other impulses.

    ``duration_s`` (seconds) must leave room for the events and their gaps (about 45 s at least).
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * SR)
    kinds = list(EVENT_KINDS)
    rng.shuffle(kinds)
    built = [EVENT_KINDS[k](rng) for k in kinds]
    # the span runs to the last impulse; the tail after it may overlap the next gap, as real reverberation does
    spans = [s.onsets[-1] - s.onset for s, _ in built]
    starts = _layout(rng, spans, n)
    # the car passes in the middle of the longest gap: at its closest it would mask a quiet knock
    ends = [0, *(s + span for s, span in zip(starts, spans, strict=True))]
    gaps = [b - a for a, b in zip(ends, [*starts, n], strict=True)]
    widest = int(np.argmax(gaps))
    mix = ambience(rng, n, (ends[widest] + gaps[widest] / 2) / SR)
    events: list[SceneEvent] = []
    for kind, (sound, note), start in zip(kinds, built, starts, strict=True):
        offset = start - sound.onset
        stop = min(offset + len(sound.samples), n)
        mix[offset:stop] += sound.samples[: stop - offset]
        events.append(
            SceneEvent(
                kind=kind.split("/")[0],
                onset_sample=start,
                rounds=len(sound.onsets),
                note=note,
                impulses=tuple(offset + o for o in sound.onsets),
            )
        )
    return Scene(samples=to_int16(mix), events=events, seed=seed)


def to_int16(x: Float64Array) -> npt.NDArray[np.int16]:
    """Full-scale float to int16, clipped (never wrapped) at the int16 limits."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_scene(scene: Scene, path: Path | str) -> Path:
    """Save the scene as 16-bit PCM; the format follows the suffix (``.wav``, ``.flac``)."""
    import soundfile as sf

    target = Path(path)
    sf.write(str(target), scene.samples, scene.sample_rate, subtype="PCM_16")
    return target
