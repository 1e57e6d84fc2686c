"""The demo street scene: ambience plus gunshot bursts and other impulses, with the ground truth.

``demo_scene(seed)`` is deterministic: the same seed gives the same samples on any machine with the same numpy
major version (it uses only ``numpy.random.Generator(PCG64)`` and FFTs). Events are spread over the scene with at
least :data:`MIN_GAP_S` of ambience between the last impulse of one and the first of the next, so bursts (burst gap
2 s) never merge.

Everything happens in one street (:class:`edge.scene.street.Street`, drawn from the seed) and is mixed as sound
pressure at the pole, then recorded by :data:`MICROPHONE`. A gunshot's level follows from its firearm, its
distance and where the barrel points; the other impulses are set by their peak level at the pole (loud ones, close
by: a sound must reach the classifier to be rejected by it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.scene import guns, sounds
from edge.scene.acoustics import SR, Float64Array, Microphone, Sound, highpass, pascal
from edge.scene.street import Street

GUNSHOT = "gunshot"
MIN_GAP_S = 3.0
"""Ambience between consecutive events (seconds), from the last impulse of one to the onset of the next."""
EDGE_S = 2.0
"""Ambience before the first and after the last event (seconds)."""
AMBIENCE_SPL = 79.0
"""RMS level of the street ambience at the pole in the microphone's band (dB SPL above its low cut): a busy
street next to the pole, traffic-dominated (some 72-75 dB(A)); the microphone reads it around -42 dBFS."""
FADE_S = 0.5
"""The ambience fades in and out over this long (seconds)."""
MICROPHONE = Microphone()


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


Maker = Callable[[np.random.Generator, Street], tuple[Sound, str]]


def _gun(make: Callable[..., Sound], mode: str, distance_m: tuple[float, float]) -> Maker:
    def build(rng: np.random.Generator, street: Street) -> tuple[Sound, str]:
        d = rng.uniform(*distance_m)
        sound = make(rng, street, distance_m=d)
        return sound, f"{mode}, {len(sound.onsets)} round(s) at ~{d:.0f} m, peak {sound.peak_spl:.0f} dB SPL"

    return build


def _other(
    make: Callable[..., Sound], what: str, distance_m: tuple[float, float], peak_db: tuple[float, float]
) -> Maker:
    """A non-gunshot source ``distance_m`` (range) from the pole, peaking at ``peak_db`` (range, dB SPL) there."""

    def build(rng: np.random.Generator, street: Street) -> tuple[Sound, str]:
        d, level = rng.uniform(*distance_m), rng.uniform(*peak_db)
        sound = make(rng, street, d, level)
        return sound, f"{what} ~{d:.0f} m away, peak {sound.peak_spl:.0f} dB SPL"

    return build


def _whoosh(rng: np.random.Generator, street: Street) -> tuple[Sound, str]:
    sound = sounds.whoosh(rng, rng.uniform(90.0, 96.0))
    return sound, f"rocket whoosh, no bang, peak {sound.peak_spl:.0f} dB SPL"


EVENT_KINDS: dict[str, Maker] = {
    "gunshot/single": _gun(guns.single_shot, "single shot (9 mm pistol)", (20.0, 60.0)),
    "gunshot/semi": _gun(guns.semi_auto_burst, "semi-auto burst (9 mm pistol)", (60.0, 120.0)),
    "gunshot/auto": _gun(guns.full_auto_burst, "full-auto burst (rifle)", (100.0, 200.0)),
    "door_slam": _other(sounds.door_slam, "house door slammed", (3.0, 6.0), (108.0, 114.0)),
    "car_door": _other(sounds.car_door, "car door shut", (3.0, 6.0), (106.0, 112.0)),
    "hand_claps": _other(sounds.hand_claps, "two hand claps", (2.0, 5.0), (102.0, 108.0)),
    "knocking": _other(sounds.knocking, "three hard knocks on a door", (3.5, 4.5), (106.0, 112.0)),
    "hammering": _other(sounds.hammering, "hammering a nail", (4.0, 8.0), (104.0, 110.0)),
    "dropped_object": _other(sounds.dropped_object, "steel pipe dropped", (3.0, 8.0), (102.0, 108.0)),
    "whoosh": _whoosh,
}
HARD_NEGATIVES: dict[str, Maker] = {
    "firecrackers": _other(sounds.firecrackers, "string of firecrackers", (20.0, 60.0), (104.0, 114.0)),
}
"""Impulses built like the others but not (yet) in the demo scene: the shipped model takes a string of
firecrackers for gunfire, and the demo promises no false alarm."""


def ambience(rng: np.random.Generator, n: int, car_at_s: float) -> Float64Array:
    """Street ambience at :data:`AMBIENCE_SPL` RMS (Pa): traffic, distant voices, wind and a car passing the pole
    at ``car_at_s`` (seconds)."""
    mix = (
        sounds.traffic_rumble(rng, n)
        + 0.15 * sounds.voices(rng, n)
        + 0.4 * sounds.wind(rng, n)
        + 1.5 * sounds.passing_car(rng, n, car_at_s)
    )
    in_band = highpass(mix, MICROPHONE.low_cut_hz)
    mix *= pascal(AMBIENCE_SPL) / float(np.sqrt(np.mean(in_band**2)))
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
    """The demo street scene: three gunshot bursts (single, semi-auto, full-auto) and seven other impulses, all in
    one street (drawn from the seed) and heard through the pole's microphone.

    ``duration_s`` (seconds) must leave room for the events and their gaps (about 45 s at least).
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * SR)
    street = Street.draw(rng)
    kinds = list(EVENT_KINDS)
    rng.shuffle(kinds)
    built = [EVENT_KINDS[k](rng, street) for k in kinds]
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
    return Scene(samples=to_int16(MICROPHONE.record(mix, rng)), events=events, seed=seed)


def to_int16(x: Float64Array) -> npt.NDArray[np.int16]:
    """Full-scale float to int16, clipped (never wrapped) at the int16 limits."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_scene(scene: Scene, path: Path | str) -> Path:
    """Save the scene as 16-bit PCM; the format follows the suffix (``.wav``, ``.flac``)."""
    import soundfile as sf

    target = Path(path)
    sf.write(str(target), scene.samples, scene.sample_rate, subtype="PCM_16")
    return target
