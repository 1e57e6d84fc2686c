"""Replay of audio files (WAV, FLAC, OGG/Vorbis at any rate and channel count) and of in-memory arrays.

Both sources deliver 16 kHz mono int16 chunks, either as fast as the caller takes them or paced in real time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from edge.audio.resample import Resampler, float_to_int16, mix_to_mono
from edge.audio.source import SAMPLE_RATE, Int16Array, SourceStats
from edge.errors import AudioError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = "WAV, FLAC or OGG/Vorbis"
_CONVERT_HINT = "convert it, e.g. `ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav`"


class _Pacer:
    """Sleeps until each chunk is due on the monotonic clock, so replay runs at wall-clock speed without drift."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._t0: float | None = None
        self._samples = 0

    def wait(self, n_samples: int) -> bool:
        """Wait until the next ``n_samples`` (16 kHz) have been "captured"; False if stopped meanwhile."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        self._samples += n_samples
        # Due times come from the start time and the sample count, never from the previous wake-up: no drift.
        delay = self._t0 + self._samples / SAMPLE_RATE - now
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()


def _open_checked(path: Path) -> sf.SoundFile:
    """Open ``path`` with soundfile, turning every way it can fail into a one-line :class:`AudioError`."""
    if not path.exists():
        raise AudioError(f"audio file not found: {path} (working directory {Path.cwd()}); check the path")
    if path.is_dir():
        raise AudioError(f"audio path is a directory, not a file: {path}; give a {SUPPORTED_FORMATS} file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"audio file is not readable (permission denied): {path}; check its permissions")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}; record or choose a non-empty file")
    try:
        handle = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise AudioError(
            f"cannot read audio file {path}: not a supported audio format ({reason}); "
            f"supported: {SUPPORTED_FORMATS}; {_CONVERT_HINT}"
        ) from exc
    if handle.frames == 0:
        handle.close()
        raise AudioError(f"audio file has no samples (0 frames): {path}; record or choose a non-empty file")
    return handle


class FileSource:
    """Streams an audio file as 16 kHz mono int16 chunks of ``chunk_samples`` (the last one may be shorter).

    The file is read block by block (never whole). ``realtime=True`` delivers each chunk when its last sample
    would have been captured by a live microphone; ``loop=True`` starts again at the end of the file, forever.
    Raises :class:`~edge.errors.AudioError` at construction when the file is missing or unreadable.
    """

    def __init__(
        self, path: str | os.PathLike[str], chunk_samples: int = 1600, realtime: bool = False, loop: bool = False
    ) -> None:
        if chunk_samples <= 0:
            raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
        self.path = Path(path)
        self.chunk_samples = chunk_samples
        self.realtime = realtime
        self.loop = loop
        self.name = f"file:{self.path}"
        self.stats = SourceStats()
        self._file: sf.SoundFile | None = _open_checked(self.path)
        self.file_rate: int = self._file.samplerate
        """Sample rate of the file itself, in Hz."""
        self.file_channels: int = self._file.channels
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, frames: int, *, rewind: bool = False) -> npt.NDArray[np.float32] | None:
        """Up to ``frames`` frames as ``(frames, channels)`` float32; None once closed.

        Runs under the lock so that ``close()`` from another thread never closes the file in the middle of a read.
        """
        with self._lock:
            if self._file is None:
                return None
            try:
                if rewind:
                    self._file.seek(0)
                block: npt.NDArray[np.float32] = self._file.read(frames, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError) as exc:
                raise AudioError(f"cannot read audio file {self.path}: {exc}; the file may be truncated") from exc
            return block

    def _blocks(self) -> Iterator[Int16Array]:
        """One pass over the file as 16 kHz mono int16 blocks of varying length."""
        resampler = Resampler(self.file_rate)
        block_frames = max(1, self.chunk_samples * self.file_rate // SAMPLE_RATE)
        block = self._read(block_frames, rewind=True)
        while block is not None and len(block) > 0:
            yield float_to_int16(resampler.process(mix_to_mono(block)))
            block = self._read(block_frames)
        if block is not None:
            yield float_to_int16(resampler.flush())

    def chunks(self) -> Iterator[Int16Array]:
        """Yield chunks from the start of the file until its end (never, with ``loop``) or ``close()``."""
        if self._file is None:
            raise AudioError(f"audio file {self.path} was already closed; open a new FileSource")
        pacer = _Pacer(self._stop)
        pending = np.zeros(0, dtype=np.int16)
        while True:
            for block in self._blocks():
                pending = np.concatenate((pending, block)) if len(pending) else block
                while len(pending) >= self.chunk_samples:
                    chunk, pending = pending[: self.chunk_samples], pending[self.chunk_samples :]
                    if not self._deliver(chunk, pacer):
                        return
                    yield chunk
            if not self.loop or self._stop.is_set():
                break
            logger.debug("looping %s", self.path)
        if len(pending) and self._deliver(pending, pacer):
            yield pending

    def _deliver(self, chunk: Int16Array, pacer: _Pacer) -> bool:
        """Count the chunk and wait until it is due; False when the source was closed meanwhile."""
        if self.realtime and not pacer.wait(len(chunk)):
            return False
        if self._stop.is_set():
            return False
        self.stats.chunks += 1
        self.stats.samples += len(chunk)
        return True

    def close(self) -> None:
        """Stop any running ``chunks()`` at its next chunk and release the file; safe to call twice."""
        self._stop.set()
        with self._lock:
            handle, self._file = self._file, None
        if handle is not None:
            handle.close()


def load_audio(path: str | os.PathLike[str]) -> Int16Array:
    """The whole file as 16 kHz mono int16 (any rate, any channel count); same errors as :class:`FileSource`."""
    with FileSource(path, chunk_samples=SAMPLE_RATE * 10) as source:
        parts = list(source.chunks())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


class ArraySource:
    """Replays an in-memory 16 kHz mono int16 array in chunks of ``chunk_samples`` (tests, demo).

    ``realtime=True`` paces delivery like :class:`FileSource`; ``loop=True`` replays the array forever (each pass
    is chunked from its start, so the last chunk of a pass may be shorter).
    """

    def __init__(
        self, samples: Int16Array, chunk_samples: int = 1600, *, realtime: bool = False, loop: bool = False
    ) -> None:
        array = np.asarray(samples)
        if array.dtype != np.int16 or array.ndim != 1:
            raise ValueError(f"ArraySource needs a 1-D int16 array, got {array.dtype} with shape {array.shape}")
        if chunk_samples <= 0:
            raise ValueError(f"chunk_samples must be positive, got {chunk_samples}")
        self.samples = array
        self.chunk_samples = chunk_samples
        self.realtime = realtime
        self.loop = loop
        self.name = "array"
        self.stats = SourceStats()
        self._stop = threading.Event()

    def chunks(self) -> Iterator[Int16Array]:
        """Yield consecutive slices of the array until it ends (never, with ``loop``) or ``close()`` is called."""
        pacer = _Pacer(self._stop)
        while True:
            for start in range(0, len(self.samples), self.chunk_samples):
                chunk = self.samples[start : start + self.chunk_samples]
                if self.realtime and not pacer.wait(len(chunk)):
                    return
                if self._stop.is_set():
                    return
                self.stats.chunks += 1
                self.stats.samples += len(chunk)
                yield chunk
            if not self.loop or len(self.samples) == 0:
                return

    def close(self) -> None:
        """Stop any running ``chunks()``; safe to call twice."""
        self._stop.set()
