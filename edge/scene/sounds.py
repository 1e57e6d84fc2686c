"""The scene's other sounds: impulses that are not gunshots, and the street's ambience.

Every impulsive sound is a *source waveform* sent through the same street as the gunshots
(:func:`edge.scene.street.impulse_response`: ground reflection, façade echoes, reverberation, spreading, air
absorption) from where such a source would be, and scaled to a peak level at the pole. The sources are built as
*excitation convolved with a response*, so attacks, resonances and decays come from the physics:

* door slam, car door, knocking, hammering, a dropped object: a contact force exciting damped structural modes
  (wood panels, car body, steel); a door's force also builds up as its seal compresses;
* hand claps: the air pocket between the palms, a Helmholtz resonator excited by their impact;
* firecrackers: a string of small blast waves (the explosive cousin of a muzzle blast, with a positive phase
  about half as long);
* a rocket's whoosh: noise with a slow swell and no attack at all;
* ambience: traffic rumble, a passing car, distant voices and wind, as spectrally shaped noise with slow level
  modulation (unit RMS; the scene sets the level).
"""

from __future__ import annotations

import numpy as np

from edge.scene.acoustics import (
    SPEED_OF_SOUND,
    SR,
    Float64Array,
    Sound,
    convolve,
    friedlander,
    lowpass,
    pascal,
    shaped_noise,
    smooth_random,
)
from edge.scene.guns import weak_shock
from edge.scene.street import Street, impulse_response


def damped_modes(
    freqs_hz: Float64Array, decay_s: Float64Array, amps: Float64Array, duration_s: float, rng: np.random.Generator
) -> Float64Array:
    """Impulse response of a structure: a sum of exponentially damped sinusoids (modal synthesis).

    ``decay_s`` is each mode's time constant (amplitude falls by 1/e), so its T60 is ``6.9 * decay_s``.
    """
    t = np.arange(round(duration_s * SR)) / SR
    phases = rng.uniform(0.0, 2.0 * np.pi, len(freqs_hz))
    env = np.exp(-t[:, None] / decay_s[None, :])
    return (np.sin(2.0 * np.pi * freqs_hz[None, :] * t[:, None] + phases) * env) @ amps


def contact_pulse(duration_s: float) -> Float64Array:
    """Force of a contact lasting ``duration_s`` (a raised half-sine, as for Hertzian impact): softer = longer."""
    n = max(round(duration_s * SR), 1)
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def place(impulses: list[Float64Array], onsets: list[int], extra: int = 0) -> Float64Array:
    """Mix impulses into one buffer, each starting at its onset (samples), plus ``extra`` samples of room."""
    n = max(o + len(x) for o, x in zip(onsets, impulses, strict=True)) + extra
    out = np.zeros(n)
    for o, x in zip(onsets, impulses, strict=True):
        out[o : o + len(x)] += x
    return out


def _struck(
    rng: np.random.Generator,
    contact_s: float,
    freqs_hz: list[float],
    decays_s: list[float],
    amps: list[float],
    duration_s: float,
    spread: float = 0.06,
) -> Float64Array:
    """A structure struck once: the contact force pulse through its (slightly randomised) modes."""
    f = np.asarray(freqs_hz) * rng.uniform(1.0 - spread, 1.0 + spread, len(freqs_hz))
    d = np.asarray(decays_s) * rng.uniform(0.85, 1.15, len(decays_s))
    a = np.asarray(amps) * rng.uniform(0.8, 1.2, len(amps))
    return convolve(contact_pulse(contact_s), damped_modes(f, d, a, duration_s, rng))


def in_street(
    rng: np.random.Generator,
    street: Street,
    hits: list[Float64Array],
    times_s: list[float],
    peak_db: float,
    distance_m: float,
    height_m: float,
    lateral_m: tuple[float, float],
    impulses: list[int] | None = None,
) -> Sound:
    """The source (``hits`` at their times) heard at the pole from ``distance_m`` away, ``height_m`` up and
    ``lateral_m`` (range) from façade A, peaking at ``peak_db`` dB SPL there.

    ``impulses`` picks which hits are reported as separate impulses (default: all); the others are parts of the
    same event (a latch after a door).
    """
    onsets = [round(s * SR) for s in times_s]
    source = street.place(rng, distance_m, height_m, lateral_m)
    wet = convolve(place(hits, onsets), impulse_response(street, source, rng))
    wet *= pascal(peak_db) / max(float(np.abs(wet).max()), 1e-12)
    chosen = range(len(onsets)) if impulses is None else impulses
    return Sound(wet, tuple(onsets[i] for i in chosen))


# --------------------------------------------------------------------------------------- impacts that are not shots


def door_slam(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """A wooden house door in façade A slammed shut: a low thud that builds up, the latch's click, a rattle.

    For the last 3-8 ms of its swing (5-10 mm at 1-2 m/s) the door compresses its rubber seal: the force between
    door and frame builds up until wood meets wood in a 2-4 ms hard contact. The panel, decelerated by that force,
    radiates as a baffled piston (a pressure pulse shaped like the force: the low thud) and rings in its modes
    (70-1100 Hz, tens of ms); the latch snaps at the hard contact and the door rattles in its frame 50-90 ms later.
    """
    seal_s, hard_s = rng.uniform(0.003, 0.008), rng.uniform(0.002, 0.004)
    held = rng.uniform(0.3, 0.5)
    seal = held * np.sin(np.linspace(0.0, np.pi / 2.0, round(seal_s * SR))) ** 2
    hard = held + contact_pulse(hard_s)
    release = held * np.cos(np.linspace(0.0, np.pi / 2.0, round(0.005 * SR))) ** 2  # the door springs back
    force = np.concatenate((seal, hard, release))
    piston = lowpass(np.concatenate((force, np.zeros(round(0.05 * SR)))), 300.0)
    freqs = np.array([75, 118, 190, 260, 410, 640, 1100]) * rng.uniform(0.94, 1.06, 7)
    decays = np.array([0.06, 0.05, 0.04, 0.03, 0.02, 0.012, 0.006]) * rng.uniform(0.85, 1.15, 7)
    modes = convolve(force, damped_modes(freqs, decays, np.array([1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1]), 0.35, rng))
    thud = place([piston / np.abs(piston).max(), modes / np.abs(modes).max()], [0, 0])
    latch = _struck(rng, 0.0004, [2300, 3900, 5200], [0.004, 0.003, 0.002], [0.5, 0.4, 0.25], 0.03)
    rattle = _struck(rng, 0.002, [330, 720, 1500], [0.03, 0.02, 0.01], [0.08, 0.05, 0.03], 0.12)
    contact = len(seal) / SR
    times = [0.0, contact + rng.uniform(0.0, 0.002), contact + rng.uniform(0.05, 0.09)]
    hits = [thud, latch * 0.5 / np.abs(latch).max(), rattle * 0.1 / np.abs(rattle).max()]
    return in_street(rng, street, hits, times, peak_db, distance_m, 1.0, (0.2, 0.4), impulses=[0])


def car_door(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """A car door shut at the kerb: the hollow steel body's low boom (40-120 Hz) and panel modes, excited by a
    3-5 ms contact through the rubber seal, with the latch's clunk."""
    body = _struck(
        rng,
        rng.uniform(0.003, 0.005),
        [48, 85, 140, 230, 370, 560, 900],
        [0.09, 0.07, 0.05, 0.04, 0.03, 0.02, 0.012],
        [1.0, 0.9, 0.7, 0.5, 0.35, 0.2, 0.1],
        0.4,
    )
    clunk = _struck(rng, 0.0008, [900, 1700, 2900, 4100], [0.012, 0.008, 0.005, 0.003], [1.0, 0.8, 0.5, 0.3], 0.05)
    hits = [body / np.abs(body).max(), clunk * 0.5 / np.abs(clunk).max()]
    lane = street.pole_offset_m + 1.0
    return in_street(
        rng, street, hits, [0.0, rng.uniform(0.0, 0.003)], peak_db, distance_m, 1.0, (lane, lane + 2.0), [0]
    )


def hand_claps(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """Two hand claps 0.3-0.5 s apart by someone on the pavement.

    The palms trap an air pocket that is squeezed out in a fraction of a millisecond and rings as a Helmholtz
    resonator (0.9-2.5 kHz, depending on how the hands are cupped) for a few ms, over the broadband slap of skin
    on skin.
    """
    claps = []
    for _ in range(2):
        centre = rng.uniform(900.0, 2500.0)
        ring = _struck(
            rng,
            rng.uniform(0.0002, 0.0004),
            [centre, centre * 1.9, centre * 0.55],
            [0.003, 0.002, 0.004],
            [1.0, 0.35, 0.3],
            0.03,
            0.1,
        )
        slap = shaped_noise(rng, len(ring), 500.0, 7000.0) * np.exp(-np.arange(len(ring)) / (0.001 * SR))
        claps.append(ring / np.abs(ring).max() + slap * rng.uniform(0.3, 0.6))
    times = [0.0, rng.uniform(0.3, 0.5)]
    side = street.pole_offset_m
    return in_street(rng, street, claps, times, peak_db, distance_m, 1.3, (0.5, side + 0.5))


def knocking(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """Three hard knocks on a wooden door in façade A, 0.15-0.25 s apart: 0.6-1.2 ms knuckle-on-wood contacts,
    panel modes 150-3300 Hz."""
    times = np.cumsum(np.concatenate(([0.0], rng.uniform(0.15, 0.25, 2))))
    hits = [
        _struck(
            rng,
            rng.uniform(0.0006, 0.0012),
            [160, 240, 420, 690, 1150, 2100, 3300],
            [0.025, 0.02, 0.015, 0.01, 0.006, 0.004, 0.003],
            [1.0, 0.8, 0.6, 0.6, 0.5, 0.4, 0.3],
            0.12,
        )
        * rng.uniform(0.85, 1.0)
        for _ in times
    ]
    return in_street(rng, street, hits, [float(t) for t in times], peak_db, distance_m, 1.4, (0.2, 0.4))


def hammering(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """4-6 hammer blows on a nail, ~0.5 s apart, by someone working on the building behind the pole.

    Steel on steel touches for a fraction of a millisecond, so the hammer head and the nail ring (inharmonic,
    1.5-6 kHz) over the dull thud of the timber.
    """
    n = int(rng.integers(4, 7))
    times = np.cumsum(np.concatenate(([0.0], rng.uniform(0.4, 0.65, n - 1))))
    hits = []
    for _ in times:
        ring = _struck(rng, 0.0003, [1650, 2900, 4300, 5900], [0.05, 0.035, 0.02, 0.012], [0.5, 0.4, 0.25, 0.15], 0.25)
        thud = _struck(rng, 0.002, [210, 380, 650], [0.02, 0.015, 0.01], [1.0, 0.6, 0.3], 0.1)
        hit = np.zeros(max(len(ring), len(thud)))
        hit[: len(ring)] += ring
        hit[: len(thud)] += thud
        hits.append(hit * rng.uniform(0.7, 1.0))
    return in_street(
        rng, street, hits, [float(t) for t in times], peak_db, distance_m, rng.uniform(1.0, 3.0), (0.3, 1.0)
    )


def dropped_object(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """A steel pipe dropped on the pavement: it bounces three times, each bounce sooner and a little softer.

    It rings with the inharmonic bending modes of a free bar (ratios 1 : 2.76 : 5.40 : 8.93), damped by its
    contact with the ground.
    """
    base = rng.uniform(380.0, 650.0)
    freqs = [base * r for r in (1.0, 2.76, 5.40, 8.93)]
    times = np.array([0.0, 0.0, 0.0])
    times[1:] = np.cumsum(rng.uniform(0.28, 0.34) * 0.5 ** np.arange(2))
    hits = [
        _struck(rng, 0.0006, freqs, [0.04, 0.025, 0.015, 0.01], [1.0, 0.7, 0.5, 0.3], 0.4, spread=0.005) * 0.9**k
        for k in range(len(times))
    ]
    return in_street(
        rng, street, hits, [float(t) for t in times], peak_db, distance_m, 0.05, (0.5, street.width_m - 0.5)
    )


def firecrackers(rng: np.random.Generator, street: Street, distance_m: float, peak_db: float) -> Sound:
    """A string of 15-40 firecrackers going off on the street as its fuse burns (1-3 s of crackle).

    Each cracker is a small blast wave: a few tenths of a gram of flash powder, about 1/20 of a rifle's charge,
    so (cube-root scaling) a positive phase of 0.15-0.4 ms 1 m away (stretched on the way like a muzzle blast's)
    and 130-145 dB SPL peak, a few duds much quieter. Intervals follow the fuse: ~70 ms on average, some
    crackers nearly together. The reported impulses are the cracks that stand apart: at least 80 ms after the
    one before and no more than 3 dB quieter than it.
    """
    count = int(rng.integers(15, 41))
    times = np.concatenate(([0.0], np.cumsum(np.maximum(rng.gamma(1.5, 0.07 / 1.5, count - 1), 0.003))))
    levels_db = rng.normal(0.0, 2.0, count) - np.where(rng.random(count) < 0.1, 12.0, 0.0)
    levels_db[0] = max(levels_db[0], 0.0)
    pops = [
        friedlander(weak_shock(pascal(138.0), rng.uniform(0.00015, 0.0004), distance_m)[1]) * 10.0 ** (db / 20.0)
        for db in levels_db
    ]
    apart = [0] + [
        k for k in range(1, count) if times[k] - times[k - 1] >= 0.08 and levels_db[k] >= levels_db[k - 1] - 3.0
    ]
    return in_street(
        rng, street, pops, [float(t) for t in times], peak_db, distance_m, 0.05, (2.0, street.width_m - 2.0), apart
    )


def whoosh(rng: np.random.Generator, peak_db: float) -> Sound:
    """A rocket-like whoosh without a bang, ``peak_db`` dB SPL at the pole: broadband noise swelling over ~0.3 s
    and fading over ~0.9 s while its spectrum slides down (the rocket climbs away and its exhaust noise
    darkens)."""
    n = round(rng.uniform(1.1, 1.4) * SR)
    t = np.arange(n) / SR
    rise, fall = rng.uniform(0.25, 0.4), rng.uniform(0.7, 1.0)
    env = np.where(t < rise, (t / rise) ** 2, np.exp(-(t - rise) / (fall / 3.0)))
    bright = shaped_noise(rng, n, 1500.0, 7000.0)
    dark = shaped_noise(rng, n, 200.0, 1500.0)
    mix = np.clip(t / (rise + fall), 0.0, 1.0)
    x = (bright * (1.0 - mix) + dark * mix) * env
    return Sound(x * pascal(peak_db) / float(np.abs(x).max()), (0,))


# ------------------------------------------------------------------------------------------------------- ambience


def traffic_rumble(rng: np.random.Generator, n: int) -> Float64Array:
    """Distant traffic: brown-ish noise below ~400 Hz whose level wanders by a few dB every few seconds (unit RMS)."""
    x = shaped_noise(rng, n, 30.0, 450.0, tilt_db_oct=-4.0)
    return x * 10.0 ** (3.0 * smooth_random(rng, n, 0.25) / 20.0)


def passing_car(rng: np.random.Generator, n: int, at_s: float) -> Float64Array:
    """A car passing the pole at ``at_s``: engine harmonics with a Doppler pitch drop plus tyre noise, swelling
    and fading with the distance (unit peak envelope, closest approach at ``at_s``)."""
    t = np.arange(n) / SR
    speed = rng.uniform(10.0, 15.0)
    lateral = rng.uniform(5.0, 10.0)
    x_pos = speed * (t - at_s)
    distance = np.hypot(x_pos, lateral)
    radial = speed * x_pos / distance
    doppler = SPEED_OF_SOUND / (SPEED_OF_SOUND + radial)
    f0 = rng.uniform(35.0, 50.0)
    phase = 2.0 * np.pi * np.cumsum(f0 * doppler) / SR
    engine = sum(np.sin(k * phase) / k for k in range(1, 7))
    tyres = shaped_noise(rng, n, 200.0, 1500.0, tilt_db_oct=-6.0)
    level = lateral / distance
    return (0.6 * engine / 1.5 + tyres) * level


def voices(rng: np.random.Generator, n: int, talkers: int = 3) -> Float64Array:
    """Distant conversation across the street: a few talkers, each speech-band noise (300-3000 Hz) modulated at
    syllable rate (~4 Hz) and by phrases that come and go. Distance and the other talkers fill the pauses, so
    the babble never drops to silence (unit RMS overall)."""
    x = np.zeros(n)
    for _ in range(talkers):
        carrier = shaped_noise(rng, n, 300.0, 3000.0, tilt_db_oct=-3.0)
        syllables = 0.35 + np.clip(smooth_random(rng, n, 8.0), 0.0, None)
        phrases = 1.0 / (1.0 + np.exp(-6.0 * smooth_random(rng, n, 0.4)))
        x += carrier * syllables * (0.2 + phrases)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def wind(rng: np.random.Generator, n: int) -> Float64Array:
    """Wind on the microphone's windscreen: low-frequency turbulence whose gusts last a few seconds (unit RMS)."""
    x = shaped_noise(rng, n, 20.0, 250.0, tilt_db_oct=-6.0)
    gusts = np.exp(1.2 * smooth_random(rng, n, 0.3))
    y = x * gusts
    return y / max(float(np.sqrt(np.mean(y**2))), 1e-12)
