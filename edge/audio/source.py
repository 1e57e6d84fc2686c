"""The one interface every audio source implements.

A source yields chunks of 16 kHz mono int16 samples. Sources never know about detection; the caller owns the
sample index (the count of samples received so far), so a source only has to deliver samples in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000

Int16Array = npt.NDArray[np.int16]


@dataclass
class SourceStats:
    """Counters a source keeps for health reporting."""

    chunks: int = 0
    samples: int = 0
    overflows: int = 0
    """Times the device delivered more than we could take (samples were lost)."""
    reconnects: int = 0
    """Times the device disappeared and was opened again."""
    gaps_samples: int = 0
    """Silence inserted while the device was away, so sample indices keep matching wall time."""
    errors: list[str] = field(default_factory=list)


class AudioSource(Protocol):
    """Yields int16 mono chunks at :data:`SAMPLE_RATE`; ``close()`` is idempotent."""

    name: str
    stats: SourceStats

    def chunks(self) -> Iterator[Int16Array]:
        """Yield chunks until the source ends (file) or ``close()`` is called (device)."""
        ...

    def close(self) -> None: ...
