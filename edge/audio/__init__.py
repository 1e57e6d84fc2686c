"""Audio capture: sources that yield 16 kHz mono int16 chunks, and the sample-indexed ring buffer."""
