"""The onset gate: finds candidate impulses cheaply and places each at a sample index.

It works on fixed 10 ms blocks of a pre-emphasised signal (first difference: a cheap high-pass that keeps a
gunshot's broadband attack and drops traffic rumble and wind). A block is a candidate when its energy rises
``rise_db`` above the quietest of the four blocks before it (``busy_rise_db`` within ``busy_s`` of the previous
candidate) and is louder than ``min_dbfs``. The onset sample is the
first sample, in that block or the one before, whose magnitude reaches a fraction of the block's peak.

Every decision depends only on complete blocks at absolute positions, so the candidates are identical whatever
chunk sizes the audio arrives in. Before the first sample the stream is treated as quiet (``min_dbfs`` - 20 dB),
so a recording that starts with a shot still yields a candidate at its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BLOCK = 160
"""Samples per gate block (10 ms at 16 kHz)."""
HISTORY = 4
"""Blocks the rise is measured against (40 ms)."""
_FULL_SCALE_POWER = 32768.0**2


@dataclass(frozen=True)
class GateParams:
    rise_db: float = 7.0
    """How far a block's energy must rise above the quietest block of the previous 40 ms (dB). 7 dB finds far
    shots that 10 dB (the training gate, ``tools.train.TRAIN_GATE``) misses, with no cost on urban metrics
    (model card, "Gate")."""
    busy_rise_db: float = 10.0
    """The rise needed within ``busy_s`` after the previous candidate. The tail, rattle or echo of an event rises
    a little again and again; a far shot comes alone. Most of what a lower ``rise_db`` adds on a street is the
    former, and every candidate costs a classifier call."""
    busy_s: float = 0.5
    min_dbfs: float = -90.0
    """Quietest block energy that can be a candidate (dB relative to full-scale power). The default sits at the
    16-bit floor (one LSB of noise is about -90 dBFS), so the gate is purely relative and a quieter microphone
    or preamp loses no shot that still rises ``rise_db`` above its own background."""
    refractory_s: float = 0.03
    """Minimum spacing of two candidates (seconds); full-auto fire at 20 rounds/s is 0.05 s apart."""
    attack_fraction: float = 0.25
    """The onset is the first sample reaching this fraction of the block's peak magnitude."""


@dataclass(frozen=True)
class Candidate:
    onset: int
    """Absolute sample index of the onset."""
    block_dbfs: float
    """Energy of the triggering block, dBFS (pre-emphasised)."""
    rise_db: float
    """How far that block rose above the background."""


class OnsetGate:
    """Feed int16 chunks of any size to :meth:`process`; it returns the candidates completed so far."""

    def __init__(self, params: GateParams | None = None) -> None:
        self.params = params or GateParams()
        quiet = _FULL_SCALE_POWER * 10.0 ** ((self.params.min_dbfs - 20.0) / 10.0) * BLOCK
        self._history = np.full(HISTORY, quiet, dtype=np.float64)
        """Energies of the last HISTORY whole blocks."""
        self._tail = np.zeros(BLOCK, dtype=np.float64)
        """Pre-emphasised samples: the last whole block (silence before the stream), then those not yet forming
        a whole block. Float64 holds the differences of int16 samples, and sums of their squares, exactly."""
        self._last_sample = 0.0
        self._blocks_done = 0
        self._last_onset = -(10**12)
        self._min_energy = _FULL_SCALE_POWER * 10.0 ** (self.params.min_dbfs / 10.0) * BLOCK
        self._rise = 10.0 ** (self.params.rise_db / 10.0)
        self._busy_rise = 10.0 ** (self.params.busy_rise_db / 10.0)
        self._refractory = round(self.params.refractory_s * 16_000)
        self._busy = round(self.params.busy_s * 16_000)

    @property
    def position(self) -> int:
        """Absolute index one past the last sample the gate has fully examined."""
        return self._blocks_done * BLOCK

    def process(self, chunk: npt.NDArray[np.int16]) -> list[Candidate]:
        if len(chunk) == 0:
            return []
        y = self._extend(chunk)
        n_blocks = len(y) // BLOCK - 1  # the first block of ``y`` was examined by the previous call
        self._tail = y[n_blocks * BLOCK :].copy()
        if n_blocks == 0:
            return []
        blocks = y[BLOCK : (n_blocks + 1) * BLOCK].reshape(n_blocks, BLOCK)
        # exact in any summation order: squared int16 differences summed in float64 stay integers below 2**53
        energy = (blocks[:, None, :] @ blocks[:, :, None]).ravel()  # row dot products; np.vecdot needs numpy 2
        background = self._background(energy)
        hits = (energy > np.maximum(self._rise * background, self._min_energy)).nonzero()[0]
        candidates = [self._candidate(int(i), y, energy, background) for i in hits]
        self._blocks_done += n_blocks
        return [c for c in candidates if c is not None]

    def _extend(self, chunk: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
        """``_tail`` followed by the first difference of ``chunk`` (a cheap high-pass: the pre-emphasis)."""
        x = chunk.astype(np.float64)
        kept = len(self._tail)
        y = np.empty(kept + len(x), dtype=np.float64)
        y[:kept] = self._tail
        y[kept] = x[0] - self._last_sample
        np.subtract(x[1:], x[:-1], out=y[kept + 1 :])
        self._last_sample = float(x[-1])
        return y

    def _background(self, energy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The quietest of the HISTORY blocks before each block: a reverberant tail decays, it never rises."""
        n = len(energy)
        padded = np.concatenate((self._history, energy))
        background = np.minimum(padded[:n], padded[1 : n + 1])
        for lag in range(2, HISTORY):
            np.minimum(background, padded[lag : lag + n], out=background)
        self._history = padded[-HISTORY:]
        return background

    def _candidate(
        self,
        i: int,
        y: npt.NDArray[np.float64],
        energy: npt.NDArray[np.float64],
        background: npt.NDArray[np.float64],
    ) -> Candidate | None:
        """Candidate for the ``i``-th new block (``y[(i + 1) * BLOCK:]``), or None within the refractory time."""
        search_from = (self._blocks_done + i - 1) * BLOCK  # the onset lies in the block before or the triggering one
        if search_from + 2 * BLOCK - 1 - self._last_onset < self._refractory:
            return None  # whatever sample the onset falls on
        pair = np.abs(y[i * BLOCK : (i + 2) * BLOCK])
        threshold = max(self.params.attack_fraction * float(pair[BLOCK:].max()), 1.0)
        # compared in float32, as numpy compares float32 samples with a Python float (the magnitudes are integers)
        onset = search_from + int((pair >= np.float32(threshold)).argmax())
        since = onset - self._last_onset
        if since < self._refractory or (since < self._busy and energy[i] <= self._busy_rise * background[i]):
            return None
        self._last_onset = onset
        return Candidate(
            onset=int(max(onset, 0)),
            block_dbfs=float(10.0 * np.log10(energy[i] / (_FULL_SCALE_POWER * BLOCK))),
            rise_db=float(10.0 * np.log10(energy[i] / max(background[i], 1.0))),
        )
