"""The streaming detector: ring buffer → onset gate → log-mel window → classifier → texture check → bursts.

Chunks of any size go in; detections come out in a deterministic order that does not depend on the chunking.
A candidate is classified as soon as the ring holds ``post_s`` of audio after its onset, so the first message
about a shot can leave about ``post_s`` plus one chunk after the shot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.audio.ring import RingBuffer
from edge.detect.bursts import BurstParams, BurstTracker, Detection, Impulse
from edge.detect.texture import TextureParams, TextureTracker
from edge.dsp.logmel import FloatArray, FrontEndParams, LogMel
from edge.dsp.onset import BLOCK, Candidate, GateParams, OnsetGate

PEAK_SPAN = 320
"""Samples after an onset searched for its peak level (20 ms)."""
MAX_PIECE = 16_000
"""Largest piece of a chunk handled at once (1 s)."""
GATE_BATCH = 4_000
"""Audio is handed to the gate in batches of at least this many samples (0.25 s): fewer, larger numpy calls.
A candidate waits ``post_s`` (0.4 s) for its window anyway, so batching below that adds no latency."""


class Scorer(Protocol):
    def predict(self, patches: FloatArray) -> FloatArray: ...


@dataclass(frozen=True)
class SecondLook:
    """A second classifier, run only on candidates the first one scored ``from_score`` or more.

    Cheap where it matters: on street ambience few candidates reach ``from_score``, so the unit pays for the second
    network only on impulses that already look like shots. Their final score mixes both logits,
    ``(1 - weight) * first + weight * second``; every other candidate keeps the first score. The second look may
    see a longer window than the first, or the same one (then the first look's log-mel patches are reused), and may
    be several networks at once (:class:`MeanLogit`).
    """

    scorer: Scorer
    front_end: FrontEndParams
    from_score: float
    weight: float = 1.0

    def combine(self, first: FloatArray, second: FloatArray) -> FloatArray:
        mixed = (1.0 - self.weight) * _logit(first) + self.weight * _logit(second)
        return (1.0 / (1.0 + np.exp(-mixed))).astype(np.float32)


class MeanLogit:
    """Several classifiers of one front end scored as one: the sigmoid of the mean of their logits.

    As the second look of a first network with ``weight = n / (n + 1)`` it makes every candidate the second look
    sees the plain average of n + 1 networks' logits: an ensemble (of training seeds, say) that costs n extra
    inferences only on candidates the first network already found gun-like.
    """

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        if not scorers:
            raise ValueError("MeanLogit needs at least one scorer")
        self.scorers = tuple(scorers)

    def predict(self, patches: FloatArray) -> FloatArray:
        mean = np.mean([_logit(s.predict(patches)) for s in self.scorers], axis=0)
        return (1.0 / (1.0 + np.exp(-mean))).astype(np.float32)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p.astype(np.float64), 1e-7, 1.0 - 1e-7)
    return np.log(q / (1.0 - q))


@dataclass
class DetectorStats:
    samples: int = 0
    candidates: int = 0
    gunshot_impulses: int = 0
    max_score: float = 0.0
    """Highest score of any candidate so far, after the texture check (0 when the gate found none)."""
    second_looks: int = 0
    """Candidates the :class:`SecondLook` classified again."""


class StreamingDetector:
    def __init__(
        self,
        scorer: Scorer,
        threshold: float,
        *,
        front_end: FrontEndParams | None = None,
        gate: GateParams | None = None,
        bursts: BurstParams | None = None,
        ring_seconds: float = 30.0,
        keep_scores: bool = False,
        second_look: SecondLook | None = None,
        texture: TextureParams | None = None,
    ) -> None:
        self.front_end = front_end or FrontEndParams()
        self.logmel = LogMel(self.front_end)
        self.scorer = scorer
        self.threshold = threshold
        # A model whose metadata names a second look carries it (TfliteModel.second_look): it always runs with it.
        self.second_look = second_look if second_look is not None else getattr(scorer, "second_look", None)
        second_look = self.second_look
        looks = [self.logmel]
        if second_look is not None:
            if second_look.front_end.sample_rate != self.front_end.sample_rate:
                raise ValueError("the second look's front end must have the same sample rate")
            same = second_look.front_end == self.front_end
            looks.append(self.logmel if same else LogMel(second_look.front_end))
        self._looks = looks
        self._wait = max(look.params.post_samples for look in looks)
        """Samples after an onset the ring must hold before the candidate is classified."""
        self.gate = OnsetGate(gate)
        self.bursts = BurstTracker(bursts)
        self.texture = TextureTracker(self.bursts.params.round_score, texture)
        longest = max(look.params.window_samples for look in looks)
        self.ring = RingBuffer(max(round(ring_seconds * self.front_end.sample_rate), 2 * longest))
        self.stats = DetectorStats()
        self._pending: deque[Candidate] = deque()
        self._gated_to = 0
        """Absolute index up to which the gate has seen the audio."""
        self._gate_batch = min(GATE_BATCH, self._wait - BLOCK)
        self.keep_scores = keep_scores
        self.scored: list[tuple[int, float]] = []
        """With ``keep_scores``: (onset, score) of every candidate since the last :meth:`take_scored`."""

    def process(self, chunk: npt.NDArray[np.int16]) -> list[Detection]:
        if chunk.dtype != np.int16 or chunk.ndim != 1:
            raise TypeError(f"expected a 1-D int16 chunk, got {chunk.dtype} with shape {chunk.shape}")
        out: list[Detection] = []
        # Bounded pieces, so a huge chunk cannot overwrite audio that a pending candidate still needs.
        for start in range(0, len(chunk), MAX_PIECE):
            piece = chunk[start : start + MAX_PIECE]
            self.ring.write(piece)
            self.stats.samples += len(piece)
            if self.ring.end - self._gated_to >= self._gate_batch:
                self._run_gate()
            if self._pending or self.bursts.is_open:
                out += self._drain(self.ring.end)
        return out

    def flush(self) -> list[Detection]:
        """End of stream: what follows the last sample is silence."""
        self._run_gate()
        out = self._drain(math.inf)
        return out + self.bursts.flush()

    def _run_gate(self) -> None:
        if self.ring.end > self._gated_to:
            self._pending.extend(self.gate.process(self.ring.read(self._gated_to, self.ring.end)))
            self._gated_to = self.ring.end

    def run(self, chunks: Iterable[npt.NDArray[np.int16]]) -> Iterator[Detection]:
        """Every detection of a whole stream, the end of the stream included."""
        for chunk in chunks:
            yield from self.process(chunk)
        yield from self.flush()

    def take_scored(self) -> list[tuple[int, float]]:
        scored, self.scored = self.scored, []
        return scored

    def _drain(self, available: float) -> list[Detection]:
        ready: list[Candidate] = []
        while self._pending and self._pending[0].onset + self._wait <= available:
            ready.append(self._pending.popleft())
        out: list[Detection] = []
        if ready:
            for cand, score in zip(ready, self._score(ready), strict=True):
                out += self._judge(cand, float(score))
        horizon = self._pending[0].onset if self._pending else self.gate.position - BLOCK
        return out + self.bursts.advance(horizon)

    def _score(self, ready: list[Candidate]) -> FloatArray:
        patches = self._patches(ready, self.logmel)
        scores = np.array(self.scorer.predict(patches), dtype=np.float32)
        second = self.second_look
        if second is not None:
            again = np.flatnonzero(scores >= second.from_score)
            if len(again):
                self.stats.second_looks += len(again)
                look = self._looks[1]
                seen = patches[again] if look is self.logmel else self._patches([ready[i] for i in again], look)
                scores[again] = second.combine(scores[again], np.asarray(second.scorer.predict(seen), np.float32))
        return scores

    def _patches(self, cands: list[Candidate], logmel: LogMel) -> FloatArray:
        pre, size = logmel.params.pre_samples, logmel.params.window_samples
        return logmel.patches(np.stack([self.ring.read(c.onset - pre, c.onset - pre + size) for c in cands]))

    def _judge(self, cand: Candidate, score: float) -> list[Detection]:
        score = self.texture.score(cand.onset, score, cand.block_dbfs)
        self.stats.candidates += 1
        self.stats.max_score = max(self.stats.max_score, score)
        if self.keep_scores:
            self.scored.append((cand.onset, score))
        if score < self.threshold and not (
            score >= self.bursts.params.round_score and self.bursts.continues(cand.onset)
        ):
            return []
        self.stats.gunshot_impulses += 1
        peak = int(np.abs(self.ring.read(cand.onset, cand.onset + PEAK_SPAN).astype(np.int32)).max())
        peak_dbfs = 20.0 * math.log10(max(peak, 1) / 32768.0)
        return self.bursts.add(Impulse(cand.onset, score, round(peak_dbfs, 1)))
