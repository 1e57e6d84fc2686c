"""Gunshots as a pole microphone in a city street hears them, from the physics of the shot.

* The muzzle blast is a weak shock: a Friedlander pulse ``P (1 - t/T) exp(-t/T)`` with an instant rise, a
  positive phase ``T`` and a shallow negative phase. With the decay constant equal to ``T`` the pulse carries no
  net impulse, as the far field of any source that releases gas and then stops must.
* 1 m to the side of the muzzle its peak is 157-162 dB SPL (9 mm pistol) or 160-165 dB SPL (rifle), and its
  positive phase 0.35-0.55 ms or 0.5-0.8 ms: small-arms impulses have A-durations under 1 ms, and Hopkinson
  (cube-root) scaling of free-air blast data for 0.3-0.5 g and 1.5-2 g of propellant gives the same. On the way
  to the pole the shock outruns its tail (weak-shock theory): the positive phase stretches by 15-25 % over
  20-200 m and the peak falls by as much more than 1/r (:func:`weak_shock`). The blast is up to 5 dB louder
  ahead of the barrel and 10 dB quieter behind it (:func:`muzzle_directivity_db`).
* A supersonic bullet drags a conical shock, heard as an N-wave of 0.2-0.5 ms ahead of the blast wherever the
  microphone is inside the cone (within ``acos(1/M)`` of the line of fire, about 60 degrees for a rifle). Its
  peak and duration follow Whitham's far-field law (:func:`bullet_crack`); it is rendered with its ground
  reflection (its façade echoes are left out). Pistol bullets leave the muzzle at about the speed of sound and
  their weak shock is left out.
* The street (:mod:`edge.scene.street`) adds the ground reflection, façade echoes, the diffuse reverberation,
  spreading and air absorption; the microphone (:class:`edge.scene.acoustics.Microphone`) overloads on close shots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.scene.acoustics import (
    ATMOSPHERE_PA,
    SPEED_OF_SOUND,
    SR,
    Float64Array,
    Sound,
    air_absorption_db_per_m,
    band_limited,
    convolve,
    friedlander,
    minimum_phase,
    pascal,
    rfft_freqs,
)
from edge.scene.street import Street, impulse_response


@dataclass(frozen=True)
class Firearm:
    name: str
    peak_db_1m: tuple[float, float]
    """Muzzle-blast peak 1 m to the side of the muzzle (dB SPL)."""
    positive_phase_s: tuple[float, float]
    """Positive-phase duration of the blast 1 m from the muzzle (s)."""
    bullet_speed_mps: float | None = None
    """Supersonic bullets only (a constant speed: the range here is short for its drag)."""
    bullet_diameter_m: float = 0.0
    bullet_length_m: float = 0.0


PISTOL = Firearm("9 mm pistol", (157.0, 162.0), (0.00035, 0.00055))
RIFLE = Firearm("7.62x39 mm rifle", (160.0, 165.0), (0.0005, 0.0008), 715.0, 0.0079, 0.026)
GAMMA = 1.4
"""Ratio of specific heats of air."""


def weak_shock(peak_pa: float, positive_s: float, distance_m: float) -> tuple[float, float]:
    """(peak, positive phase) of a spherical blast wave ``distance_m`` out, from its values 1 m out, with the
    peak given as the pressure it would have 1 m out under 1/r spreading alone.

    The shock front outruns the end of the positive phase by ``(γ+1)/(4γ) · P/p0 · c``, so the positive phase
    grows as ``T² = T1² + (γ+1)/(2γ c p0) · P1 T1 · ln(r / 1 m)`` while its impulse ``P·T/2`` keeps falling as 1/r.
    """
    stretch = (GAMMA + 1.0) / (2.0 * GAMMA * SPEED_OF_SOUND * ATMOSPHERE_PA) * peak_pa * positive_s
    stretched = float(np.sqrt(positive_s**2 + stretch * np.log(max(distance_m, 1.0))))
    return peak_pa * positive_s / stretched, stretched


def muzzle_directivity_db(cos_angle: Float64Array) -> Float64Array:
    """Blast level relative to 90 degrees off the barrel: +5 dB ahead, 0 to the side, -10 dB behind."""
    return 7.5 * cos_angle - 2.5 * cos_angle**2


def n_wave(duration_s: float) -> Float64Array:
    """A bullet's shock wave: a jump to +1, a linear fall to -1 over ``duration_s``, a jump back to 0."""
    return band_limited(lambda t: np.where(t < duration_s, 1.0 - 2.0 * t / duration_s, 0.0), 0.004)


@dataclass(frozen=True)
class Crack:
    delay_s: float
    """Time from the shot until the shock reaches the microphone (s)."""
    peak_pa: float
    """Peak overpressure at the microphone (Pa)."""
    duration_s: float
    """From the front shock to the tail shock of the N-wave (s)."""
    path_m: float
    """Distance the shock travelled from the trajectory (m)."""


def bullet_crack(firearm: Firearm, muzzle: Float64Array, barrel: Float64Array, mic: Float64Array) -> Crack | None:
    """Where, when and how loud a bullet's shock reaches ``mic``, or None if it never does.

    The shock leaves the trajectory at the Mach angle, so it reaches a point ``b`` from the line of fire and
    ``x`` along it at ``x/v + b·sqrt(M²-1)/(M·c)``, provided the emission point ``x - b/sqrt(M²-1)`` lies past
    the muzzle. Whitham: peak ``0.53 p0 (M²-1)^(1/8) d / (b^(3/4) l^(1/4))``, duration
    ``1.82 M b^(1/4) d / (c (M²-1)^(3/8) l^(1/4))`` (d, l: bullet diameter and length).
    """
    if firearm.bullet_speed_mps is None:
        return None
    mach = firearm.bullet_speed_mps / SPEED_OF_SOUND
    root = np.sqrt(mach**2 - 1.0)
    rel = mic - muzzle
    along = float(rel @ barrel)
    miss = float(np.sqrt(max(float(rel @ rel) - along**2, 1e-6)))
    if along - miss / root < 0.0:
        return None
    d, length = firearm.bullet_diameter_m, firearm.bullet_length_m
    return Crack(
        delay_s=along / firearm.bullet_speed_mps + miss * root / (mach * SPEED_OF_SOUND),
        peak_pa=0.53 * ATMOSPHERE_PA * (mach**2 - 1.0) ** 0.125 * d / (miss**0.75 * length**0.25),
        duration_s=1.82 * mach * miss**0.25 * d / (SPEED_OF_SOUND * (mach**2 - 1.0) ** 0.375 * length**0.25),
        path_m=miss * mach / root,
    )


def _crack_at_mic(crack: Crack) -> Float64Array:
    """The N-wave at the microphone, with the air absorption of its path from the trajectory."""
    wave = n_wave(crack.duration_s) * crack.peak_pa
    freqs = rfft_freqs(len(wave))
    loss = minimum_phase(10.0 ** (-air_absorption_db_per_m(freqs) * crack.path_m / 20.0))
    return np.fft.irfft(np.fft.rfft(wave) * loss, len(wave))


def _cracks(
    firearm: Firearm, muzzle: Float64Array, barrel: Float64Array, street: Street
) -> list[tuple[float, Float64Array]]:
    """(delay after the blast's arrival (s, negative: ahead of it), pressure) of the shock and of its reflection
    off the street (the shock that reaches the microphone's mirror image below the ground)."""
    mic = street.microphone
    blast_s = float(np.linalg.norm(mic - muzzle)) / SPEED_OF_SOUND
    out = []
    for point, gain in ((mic, 1.0), (mic * np.array([1.0, 1.0, -1.0]), street.ground_reflection)):
        crack = bullet_crack(firearm, muzzle, barrel, point)
        if crack is not None:
            out.append((crack.delay_s - blast_s, _crack_at_mic(crack) * gain))
    return out


def gunshot_burst(
    rng: np.random.Generator,
    firearm: Firearm,
    rounds: int,
    interval_s: tuple[float, float],
    distance_m: float,
    street: Street,
    aim_deg: tuple[float, float] = (0.0, 180.0),
) -> Sound:
    """``rounds`` shots from one weapon ``distance_m`` from the pole, spaced uniformly within ``interval_s`` (s).

    The shooter stands on the street (1.5 m from either façade at least, the muzzle 1.1-1.6 m up) and fires
    horizontally, ``aim_deg`` (range, degrees) to the left or right of the direction to the pole: (0, 180) is any
    direction. The onsets are the arrival of each round's first wavefront (the crack, where there is one).
    """
    muzzle = street.place(rng, distance_m, rng.uniform(1.1, 1.6), (1.5, street.width_m - 1.5))
    mic = street.microphone
    to_pole = float(np.arctan2(mic[1] - muzzle[1], mic[0] - muzzle[0]))
    turn = np.deg2rad(rng.uniform(*aim_deg)) * rng.choice([-1.0, 1.0])
    barrel = np.array([np.cos(to_pole + turn), np.sin(to_pole + turn), 0.0])

    def directivity(directions: Float64Array) -> Float64Array:
        return 10.0 ** (muzzle_directivity_db(directions @ barrel) / 20.0)

    ir = impulse_response(street, muzzle, rng, directivity)
    peak, positive = weak_shock(
        pascal(rng.uniform(*firearm.peak_db_1m)), rng.uniform(*firearm.positive_phase_s), distance_m
    )
    gaps = rng.uniform(*interval_s, size=max(rounds - 1, 0))
    starts = np.concatenate(([0], np.cumsum(np.round(gaps * SR)))).astype(int)
    cracks = _cracks(firearm, muzzle, barrel, street)
    lead = -min([round(delay * SR) for delay, _ in cracks] + [0])
    blasts = np.zeros(lead + int(starts[-1]) + 2048)
    for start in starts:
        pulse = friedlander(positive * rng.uniform(0.97, 1.03)) * peak * 10.0 ** (rng.uniform(-0.5, 0.5) / 20.0)
        blasts[lead + start : lead + start + len(pulse)] += pulse
    pressure = convolve(blasts, ir)
    for delay, shock in cracks:
        for start in starts:
            at = lead + int(start) + round(delay * SR)
            pressure[at : at + len(shock)] += shock[: len(pressure) - at]
    return Sound(pressure, tuple(int(start) for start in starts))


def single_shot(rng: np.random.Generator, street: Street, distance_m: float = 40.0) -> Sound:
    """One pistol round."""
    return gunshot_burst(rng, PISTOL, 1, (0.0, 0.0), distance_m, street)


def semi_auto_burst(rng: np.random.Generator, street: Street, distance_m: float = 90.0) -> Sound:
    """3-5 pistol rounds 0.15-0.5 s apart (as fast as the trigger allows)."""
    rounds = int(rng.integers(3, 6))
    return gunshot_burst(rng, PISTOL, rounds, (0.15, 0.5), distance_m, street)


def full_auto_burst(rng: np.random.Generator, street: Street, distance_m: float = 150.0) -> Sound:
    """8-12 rifle rounds at 12-15 rounds/s, fired away from the pole (so it is outside the bullets' shock cones)."""
    rounds = int(rng.integers(8, 13))
    period = 1.0 / rng.uniform(12.0, 15.0)
    return gunshot_burst(rng, RIFLE, rounds, (period * 0.97, period * 1.03), distance_m, street, (75.0, 180.0))
