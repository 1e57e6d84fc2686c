"""Sound propagation from a source in a street to the pole microphone: an image-source street canyon.

The street runs along x between two façades, A at y = 0 (the pole's side) and B at y = ``width_m``, over hard
asphalt (z = 0). The microphone is on the pole at x = 0, ``pole_offset_m`` from façade A and
:data:`POLE_HEIGHT_M` up. Mirroring the microphone in the façades, the ground and the buildings that close the
street gives every specular path: its length (delay, 1/r spreading, air absorption), its number of bounces
(façade losses) and the direction it leaves the source in (a muzzle blast is louder ahead of the barrel).

What a façade does not reflect specularly it scatters (windows, balconies, signs, more so at high frequencies);
that energy becomes the diffuse reverberation, which decays with the street's RT60 (faster at high frequencies,
where the air absorbs along the way). The result is an impulse response: pressure at the microphone for a source
whose waveform is given as the pressure 1 m from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.scene.acoustics import (
    SPEED_OF_SOUND,
    SR,
    Float64Array,
    air_absorption_db_per_m,
    minimum_phase,
    rfft_freqs,
)

POLE_HEIGHT_M = 4.0
"""Microphone height above the street (m)."""
SPECULAR_ORDER = 12
"""Façade bounces rendered as discrete (specular) echoes."""
DIFFUSE_ORDER = 30
"""Façade bounces whose scattered energy feeds the diffuse tail."""
SCATTER_CORNER_HZ = 250.0
"""Below about this frequency façades and what stands in front of them are mirrors; above it the sound that
travels at pedestrian height (shooter 1.1-1.6 m, microphone 4 m) meets window recesses, balconies, parked cars,
trees and street furniture, all 0.2-2 m in size, and is scattered."""
BANDS_HZ = np.array([125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0])
"""Octave bands of the diffuse tail."""
PATH_FFT = 1024
"""FFT size of one path's filter (air absorption, façade losses and the ADC band: all short)."""

Directivity = Callable[[Float64Array], Float64Array]
"""Amplitude gain of a source for unit direction vectors (rows) leaving it; ``None`` for an omnidirectional one."""


@dataclass(frozen=True)
class Street:
    width_m: float
    """Façade to façade (m)."""
    pole_offset_m: float
    """The pole's distance from façade A (m): it stands at the kerb."""
    facade_reflection: float
    """Energy share a façade bounce keeps (the rest is absorbed or escapes through openings and side streets)."""
    scattering: float
    """Share of the reflected energy a façade bounce scatters at high frequencies (it tends to 0 at low ones)."""
    rt60_s: float
    """Reverberation time of the diffuse field in the 500 Hz-1 kHz octaves (s)."""
    end_walls_m: tuple[float, ...] = ()
    """x of buildings that close the street (a T-junction ahead of or behind the pole; one end at most) (m)."""
    end_reflection: float = 0.6
    """Energy share such a building sends back (it is finite: edges diffract part of the sound away)."""
    ground_reflection: float = 0.95
    """Pressure reflection coefficient of asphalt (acoustically hard)."""

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Street:
        """A city street: 15-30 m between 3-6 storey façades with parked cars and trees in front, RT60 0.5-1.5 s,
        half the time closed 60-150 m from the pole, at one end, by a building across it (a T-junction)."""
        width = rng.uniform(15.0, 30.0)
        walls = (float(rng.choice([-1.0, 1.0]) * rng.uniform(60.0, 150.0)),) if rng.random() < 0.5 else ()
        return cls(
            width_m=width,
            pole_offset_m=rng.uniform(2.0, 4.0),
            facade_reflection=rng.uniform(0.75, 0.9),
            scattering=rng.uniform(0.5, 0.8),
            rt60_s=rng.uniform(0.5, 1.5),
            end_walls_m=walls,
        )

    @property
    def microphone(self) -> Float64Array:
        return np.array([0.0, self.pole_offset_m, POLE_HEIGHT_M])

    def place(
        self, rng: np.random.Generator, distance_m: float, height_m: float, lateral_m: tuple[float, float]
    ) -> Float64Array:
        """A source position ``distance_m`` from the microphone, ``height_m`` above the street and
        ``lateral_m`` (range, m) from façade A, up or down the street at random (never beyond a building that
        closes it: the street is open at one end at least)."""
        y = rng.uniform(*lateral_m)
        mic = self.microphone
        along = float(np.sqrt(max(distance_m**2 - (y - mic[1]) ** 2 - (height_m - mic[2]) ** 2, 0.0)))
        sides = [s for s in (-1.0, 1.0) if all(along < wall * s - 5.0 for wall in self.end_walls_m if wall * s > 0)]
        return np.array([along * float(rng.choice(sides)), y, height_m])

    def scattering_at(self, freqs_hz: Float64Array) -> Float64Array:
        f2 = freqs_hz**2
        return self.scattering * f2 / (f2 + SCATTER_CORNER_HZ**2)

    def rt60_at(self, freqs_hz: Float64Array) -> Float64Array:
        """The diffuse field decays faster where the air absorbs along its path (c · α dB per second more)."""
        return 60.0 / (60.0 / self.rt60_s + SPEED_OF_SOUND * air_absorption_db_per_m(freqs_hz))


@dataclass(frozen=True)
class Paths:
    """The specular image paths from a source to the microphone."""

    length_m: Float64Array
    facade: Float64Array
    """Façade bounces on each path."""
    ground: Float64Array
    """Ground bounces (0 or 1)."""
    ends: Float64Array
    """Bounces off a building closing the street (0 or 1)."""
    gain: Float64Array
    """Source directivity along the path (amplitude)."""


def image_paths(street: Street, source: Float64Array, order: int, directivity: Directivity | None = None) -> Paths:
    """Every path with up to ``order`` façade bounces, with and without a ground bounce, and (up to two façade
    bounces) off each building that closes the street."""
    mic = street.microphone
    w = street.width_m
    ks = np.arange(-order, order + 1)
    # images of the microphone in the two façades: 2kW + y (2|k| bounces) and 2kW - y (|2k - 1| bounces)
    ys = np.concatenate((2.0 * ks * w + mic[1], 2.0 * ks * w - mic[1]))
    fy = np.concatenate((np.abs(2 * ks), np.abs(2 * ks - 1))).astype(np.float64)
    keep = fy <= order
    ys, fy = ys[keep], fy[keep]
    xs, ex = [np.zeros_like(ys)], [np.zeros_like(ys)]
    yy, ff = [ys], [fy]
    for wall in street.end_walls_m:
        near = fy <= 2
        xs.append(np.full(int(near.sum()), 2.0 * wall))
        ex.append(np.ones(int(near.sum())))
        yy.append(ys[near])
        ff.append(fy[near])
    x, y, f, e = (np.concatenate(a) for a in (xs, yy, ff, ex))
    # each with and without a ground bounce
    x, y, f, e = (np.concatenate((a, a)) for a in (x, y, f, e))
    z = np.concatenate((np.full(len(x) // 2, mic[2]), np.full(len(x) // 2, -mic[2])))
    g = np.concatenate((np.zeros(len(x) // 2), np.ones(len(x) // 2)))
    vec = np.stack((x, y, z), axis=1) - source[None, :]
    length = np.sqrt(np.sum(vec**2, axis=1))
    gain = np.ones(len(length)) if directivity is None else directivity(vec / length[:, None])
    return Paths(length, f, g, e, gain)


def impulse_response(
    street: Street,
    source: Float64Array,
    rng: np.random.Generator,
    directivity: Directivity | None = None,
    diffuse: bool = True,
) -> Float64Array:
    """Pressure at the microphone for a unit pressure 1 m from the source; sample 0 is the direct arrival.

    Specular paths are rendered as their own short causal filters (1/r, air absorption over their length, façade
    and ground losses, minimum phase) at their exact (fractional) delays. The diffuse tail is
    Gaussian noise in octave bands: each scattered reflection starts an exponential decay (the band's RT60) that
    carries the energy it scattered, so the tail builds up with the first reflections and darkens as it decays.
    """
    paths = image_paths(street, source, SPECULAR_ORDER, directivity)
    direct = float(paths.length_m.min())
    delay = (paths.length_m - direct) / SPEED_OF_SOUND * SR
    rt60 = street.rt60_at(BANDS_HZ)
    n = int(delay.max()) + PATH_FFT + (round(1.1 * float(rt60.max()) * SR) if diffuse else 0)
    ir = np.zeros(n)

    freqs = rfft_freqs(PATH_FFT)
    scatter = street.scattering_at(freqs)
    keep_db = 10.0 * np.log10(street.facade_reflection * (1.0 - scatter))
    end_db = 10.0 * np.log10(street.end_reflection * (1.0 - scatter))
    air = air_absorption_db_per_m(freqs)
    ground_db = 20.0 * np.log10(np.where(paths.ground > 0, max(street.ground_reflection, 1e-6), 1.0))
    level_db = (
        paths.facade[:, None] * keep_db[None, :]
        + paths.ends[:, None] * end_db[None, :]
        - paths.length_m[:, None] * air[None, :]
    ) / 2.0 + ground_db[:, None]
    amplitude = paths.gain / paths.length_m
    loud = amplitude * 10.0 ** (level_db.max(axis=1) / 20.0) > 1e-3 / direct
    whole = np.floor(delay[loud]).astype(int)
    # a fractional delay rings a little before its arrival: start each filter up to 32 samples early (never before
    # the direct sound, which arrives on a whole sample and so does not ring)
    early = np.minimum(whole, 32)
    frac = delay[loud] - whole + early
    spectra = minimum_phase(10.0 ** (level_db[loud] / 20.0))
    spectra *= amplitude[loud, None] * np.exp(-2j * np.pi * freqs[None, :] * frac[:, None] / SR)
    for start, h in zip(whole - early, np.fft.irfft(spectra, PATH_FFT, axis=1), strict=True):
        ir[start : start + PATH_FFT] += h
    if diffuse:
        ir += _diffuse_tail(street, source, rng, directivity, direct, n)
    return ir


def _diffuse_tail(
    street: Street,
    source: Float64Array,
    rng: np.random.Generator,
    directivity: Directivity | None,
    direct_m: float,
    n: int,
) -> Float64Array:
    paths = image_paths(street, source, DIFFUSE_ORDER, directivity)
    bounces = paths.facade + paths.ends
    reflected = bounces > 0
    length, bounces = paths.length_m[reflected], bounces[reflected]
    ground = np.where(paths.ground[reflected] > 0, street.ground_reflection**2, 1.0)
    reflect = street.facade_reflection ** paths.facade[reflected] * street.end_reflection ** paths.ends[reflected]
    base = paths.gain[reflected] ** 2 / length**2 * ground * reflect
    arrival = np.minimum(((length - direct_m) / SPEED_OF_SOUND * SR).astype(int), n - 1)
    freqs = rfft_freqs(n)
    weights = _band_weights(freqs)
    tail_spec = np.zeros(len(freqs), dtype=np.complex128)
    t = np.arange(n)
    for band, rt60, weight in zip(BANDS_HZ, street.rt60_at(BANDS_HZ), weights, strict=True):
        # the energy scattered at the last bounce of each path (what earlier bounces scattered is counted there)
        scatter = float(street.scattering_at(np.array([band]))[0])
        scattered = scatter * (1.0 - scatter) ** (bounces - 1.0)
        absorbed = 10.0 ** (-float(air_absorption_db_per_m(np.array([band]))[0]) * length / 10.0)
        energy = np.bincount(arrival, weights=base * scattered * absorbed, minlength=n)
        decay = np.exp(-t / (rt60 / 13.8 * SR))
        per_sample = np.fft.irfft(np.fft.rfft(energy, 2 * n) * np.fft.rfft(decay / decay.sum(), 2 * n), 2 * n)[:n]
        noise = rng.standard_normal(n) * np.sqrt(np.maximum(per_sample, 0.0))
        tail_spec += np.fft.rfft(noise) * weight
    return np.fft.irfft(tail_spec, n)


def _band_weights(freqs: Float64Array) -> Float64Array:
    """Power-complementary octave-band masks (their squares sum to 1 at every frequency)."""
    octave = np.log2(np.maximum(freqs, 1.0) / BANDS_HZ[0])
    idx = np.clip(octave, 0.0, len(BANDS_HZ) - 1.0)
    weights = np.zeros((len(BANDS_HZ), len(freqs)))
    lower = np.floor(idx).astype(int)
    upper = np.minimum(lower + 1, len(BANDS_HZ) - 1)
    share = idx - lower
    rows = np.arange(len(freqs))
    weights[lower, rows] += np.cos(share * np.pi / 2.0) ** 2
    weights[upper, rows] += np.sin(share * np.pi / 2.0) ** 2
    return np.sqrt(weights)
