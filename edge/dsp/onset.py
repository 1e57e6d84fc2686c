"""The onset gate: finds candidate impulses cheaply and places each at a sample index.

It works on fixed 10 ms blocks of a pre-emphasised signal (first difference: a cheap high-pass that keeps a
gunshot's broadband attack and drops traffic rumble and wind). A block is a candidate when its energy rises
``rise_db`` above the quietest of the four blocks before it and is louder than ``min_dbfs``. The onset sample is the
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
    rise_db: float = 10.0
    """How far a block's energy must rise above the quietest block of the previous 40 ms (dB)."""
    min_dbfs: float = -60.0
    """Quietest block energy that can be a candidate (dB relative to full-scale power)."""
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
        self._pending = np.zeros(0, dtype=np.float32)
        """Pre-emphasised samples not yet forming a whole block."""
        self._prev_block = np.zeros(BLOCK, dtype=np.float32)
        self._last_sample = 0.0
        self._blocks_done = 0
        self._last_onset = -(10**12)
        self._min_energy = _FULL_SCALE_POWER * 10.0 ** (self.params.min_dbfs / 10.0) * BLOCK
        self._rise = 10.0 ** (self.params.rise_db / 10.0)
        self._refractory = round(self.params.refractory_s * 16_000)

    @property
    def position(self) -> int:
        """Absolute index one past the last sample the gate has fully examined."""
        return self._blocks_done * BLOCK

    def process(self, chunk: npt.NDArray[np.int16]) -> list[Candidate]:
        if len(chunk) == 0:
            return []
        x = chunk.astype(np.float32)
        diff = np.empty_like(x)
        diff[0] = x[0] - self._last_sample
        np.subtract(x[1:], x[:-1], out=diff[1:])
        self._last_sample = float(x[-1])
        y = np.concatenate((self._pending, diff)) if len(self._pending) else diff
        n_blocks = len(y) // BLOCK
        self._pending = y[n_blocks * BLOCK :]
        if n_blocks == 0:
            return []
        blocks = y[: n_blocks * BLOCK].reshape(n_blocks, BLOCK)
        # exact in any summation order: squared int16 differences summed in float64 stay integers below 2**53
        wide = blocks.astype(np.float64)
        energy = (wide[:, None, :] @ wide[:, :, None]).ravel()  # row dot products; np.vecdot needs numpy 2
        padded = np.concatenate((self._history, energy))
        # the quietest of the HISTORY blocks before each block: a reverberant tail decays, it never rises
        background = padded[:n_blocks].copy()
        for lag in range(1, HISTORY):
            np.minimum(background, padded[lag : lag + n_blocks], out=background)
        hits = (energy > np.maximum(self._rise * background, self._min_energy)).nonzero()[0]
        candidates = [self._candidate(i, blocks, energy, background) for i in hits]
        self._history = padded[-HISTORY:]
        self._prev_block = blocks[-1].copy()
        self._blocks_done += n_blocks
        return [c for c in candidates if c is not None]

    def _candidate(
        self,
        i: int,
        blocks: npt.NDArray[np.float32],
        energy: npt.NDArray[np.float64],
        background: npt.NDArray[np.float64],
    ) -> Candidate | None:
        before = blocks[i - 1] if i > 0 else self._prev_block
        pair = np.abs(np.concatenate((before, blocks[i])))
        threshold = max(self.params.attack_fraction * float(pair[BLOCK:].max()), 1.0)
        first = int(np.argmax(pair >= threshold))
        onset = (self._blocks_done + i - 1) * BLOCK + first
        if onset - self._last_onset < self._refractory:
            return None
        self._last_onset = onset
        return Candidate(
            onset=int(max(onset, 0)),
            block_dbfs=float(10.0 * np.log10(energy[i] / (_FULL_SCALE_POWER * BLOCK))),
            rise_db=float(10.0 * np.log10(energy[i] / max(background[i], 1.0))),
        )
