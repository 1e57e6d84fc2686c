import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.audio.ring import RingBuffer


@given(
    capacity=st.integers(min_value=1, max_value=50),
    writes=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=12),
    reads=st.lists(st.tuples(st.integers(-10, 60), st.integers(0, 60)), min_size=1, max_size=8),
)
@settings(max_examples=300, deadline=None)
def test_reads_match_the_whole_stream(capacity: int, writes: list[int], reads: list[tuple[int, int]]) -> None:
    """Any range reads as the stream itself, silence outside it, or IndexError where it was overwritten."""
    stream = np.arange(1, sum(writes) + 1, dtype=np.int16)
    ring, pos = RingBuffer(capacity), 0
    for n in writes:
        ring.write(stream[pos : pos + n])
        pos += n
    assert ring.end == len(stream)
    pad = np.zeros(70, np.int16)
    padded = np.concatenate((pad, stream, pad))
    for back, length in reads:
        start, stop = ring.end - back, ring.end - back + length
        lo, hi = max(start, 0), min(stop, ring.end)
        if lo < hi and lo < ring.start:
            with pytest.raises(IndexError):
                ring.read(start, stop)
        else:
            np.testing.assert_array_equal(ring.read(start, stop), padded[start + 70 : stop + 70])
