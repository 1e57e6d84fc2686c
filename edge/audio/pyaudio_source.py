"""Live capture from a PortAudio input device through PyAudio.

PyAudio is imported only when this source is built, so nothing else in polewatch needs it. Capture runs in
callback mode: PortAudio's thread hands each buffer, with its input-overflow flag, to a bounded queue that
:meth:`PyAudioSource.chunks` drains. (PyAudio's blocking ``read(..., exception_on_overflow=True)`` would close the
stream on every overflow, and with ``False`` overflows cannot be counted.)
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge.audio.resample import Resampler, float_to_int16, mix_to_mono
from edge.audio.source import SAMPLE_RATE, Int16Array, SourceStats
from edge.errors import AudioDeviceError

logger = logging.getLogger(__name__)

InputDevice = tuple[int, str, int, int]
"""(PortAudio index, name, max input channels, default sample rate in Hz)."""

QUEUE_SECONDS = 5.0
"""Audio the callback may queue ahead of a slow consumer before it drops buffers (counted as overflows)."""
STALL_SECONDS = 2.0
"""A running stream that delivers nothing for this long (or 5 chunks, if longer) is treated as lost."""
MAX_ERRORS_KEPT = 20

_NO_DEVICE_HINT = "check the USB microphone is plugged in (arecord -l) or set audio.device"


def _import_pyaudio() -> Any:
    try:
        import pyaudio
    except (ImportError, OSError) as exc:
        raise AudioDeviceError(
            f"cannot use the microphone: PyAudio is not available ({exc}); "
            "install it with pip install 'polewatch[pi]' and apt install libportaudio2"
        ) from exc
    return pyaudio


def _input_devices(pa: Any) -> list[InputDevice]:
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info.get("maxInputChannels", 0)) > 0:
            devices.append((index, str(info["name"]), int(info["maxInputChannels"]), int(info["defaultSampleRate"])))
    return devices


def list_input_devices(*, pyaudio_module: Any = None) -> list[InputDevice]:
    """Every input device PortAudio sees now: (index, name, channels, default rate in Hz)."""
    module = pyaudio_module if pyaudio_module is not None else _import_pyaudio()
    pa = module.PyAudio()
    try:
        return _input_devices(pa)
    finally:
        pa.terminate()


def _describe(devices: list[InputDevice]) -> str:
    listed = ", ".join(f"{i} {name!r} ({ch} ch, {rate} Hz)" for i, name, ch, rate in devices)
    return f"PortAudio lists {len(devices)} input device{'' if len(devices) == 1 else 's'}: {listed}"


def _select_device(pa: Any, wanted: str) -> InputDevice:
    """The input device named by ``wanted``: "" = default, digits = index, else a case-insensitive name part."""
    devices = _input_devices(pa)
    if not devices:
        raise AudioDeviceError(f"no microphone found: PortAudio lists 0 input devices; {_NO_DEVICE_HINT}")
    if wanted == "":
        try:
            default_index = int(pa.get_default_input_device_info()["index"])
        except OSError:
            default_index = -1
        for dev in devices:
            if dev[0] == default_index:
                return dev
        raise AudioDeviceError(f"no default microphone: {_describe(devices)}; set audio.device to one of them")
    if wanted.isdigit():
        for dev in devices:
            if dev[0] == int(wanted):
                return dev
        raise AudioDeviceError(
            f"no input device with index {wanted}: {_describe(devices)}; set audio.device to one of them"
        )
    key = wanted.casefold()
    matches = [d for d in devices if d[1].casefold() == key] or [d for d in devices if key in d[1].casefold()]
    if not matches:
        raise AudioDeviceError(
            f"no microphone matches audio.device={wanted!r}: {_describe(devices)}; "
            "set audio.device to part of one of these names, or check the USB microphone is plugged in (arecord -l)"
        )
    if len(matches) > 1:
        logger.warning("audio.device %r matches %d devices; using %d %r", wanted, len(matches), *matches[0][:2])
    return matches[0]


class PyAudioSource:
    """A live microphone as 16 kHz mono int16 chunks of about ``chunk_ms`` milliseconds.

    ``device``: "" for the default input, a part of the device name (case-insensitive), or its index as digits.
    The device is opened at 16 kHz when it supports it, else at ``device_rate`` (Hz) or its default rate, and
    resampled. When the device fails or goes silent the source closes it, tries to reopen it every
    ``reopen_interval_s`` seconds, and on success yields zeros for the time it was away, so the count of samples
    delivered keeps tracking wall time (``stats.gaps_samples``, ``stats.reconnects``).

    Raises :class:`~edge.errors.AudioDeviceError` at construction when PyAudio or the device is missing.
    ``pyaudio_module`` replaces the ``pyaudio`` module (tests).
    """

    def __init__(
        self,
        device: str = "",
        device_rate: int = 0,
        chunk_ms: int = 100,
        reopen_interval_s: float = 2.0,
        *,
        pyaudio_module: Any = None,
    ) -> None:
        if chunk_ms <= 0 or reopen_interval_s <= 0 or device_rate < 0:
            raise ValueError(
                f"bad capture settings: chunk_ms={chunk_ms}, reopen_interval_s={reopen_interval_s}, "
                f"device_rate={device_rate}"
            )
        self._pyaudio = pyaudio_module if pyaudio_module is not None else _import_pyaudio()
        self.device = device
        self.device_rate = device_rate
        self.chunk_ms = chunk_ms
        self.reopen_interval_s = reopen_interval_s
        self.name = f"pyaudio:{device or 'default'}"
        self.stats = SourceStats()
        self.rate = 0
        """Rate the device is open at, in Hz."""
        self.channels = 0
        self._chunk_samples = SAMPLE_RATE * chunk_ms // 1000
        self._stall_s = max(STALL_SECONDS, 5 * chunk_ms / 1000)
        self._poll_s = min(0.25, max(0.02, 2 * chunk_ms / 1000))
        self._queue: queue.Queue[tuple[bytes, bool, int]] = queue.Queue(math.ceil(QUEUE_SECONDS * 1000 / chunk_ms))
        self._dropped_frames = 0
        """Frames the callback could not queue since its last successful put (touched by the callback only)."""
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pa: Any = None
        self._stream: Any = None
        self._resampler: Resampler | None = None
        self._last_data = time.monotonic()
        self._open()

    def __enter__(self) -> PyAudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- device ---------------------------------------------------------------------------------------------
    def _choose_format(self, pa: Any, index: int, max_channels: int, default_rate: int) -> tuple[int, int]:
        rates = [self.device_rate] if self.device_rate else [SAMPLE_RATE, default_rate]
        for rate in rates:
            for channels in (1, 2)[: max(1, min(2, max_channels))]:
                try:
                    if pa.is_format_supported(
                        rate, input_device=index, input_channels=channels, input_format=self._pyaudio.paInt16
                    ):
                        return rate, channels
                except ValueError:
                    continue
        return rates[-1], 1  # let open() report what is wrong

    def _open(self) -> None:
        """Open (not start) the configured device; raises AudioDeviceError."""
        pa = self._pyaudio.PyAudio()
        opened = False
        try:
            index, name, max_channels, default_rate = _select_device(pa, self.device)
            rate, channels = self._choose_format(pa, index, max_channels, default_rate)
            try:
                stream = pa.open(
                    format=self._pyaudio.paInt16,
                    channels=channels,
                    rate=rate,
                    input=True,
                    input_device_index=index,
                    frames_per_buffer=max(1, rate * self.chunk_ms // 1000),
                    stream_callback=self._on_audio,
                    start=False,
                )
            except (OSError, ValueError) as exc:
                raise AudioDeviceError(
                    f"cannot open microphone {index} {name!r} at {rate} Hz, {channels} channel(s): {exc}; "
                    "is another program using it (fuser -v /dev/snd/*)? or set audio.device_rate"
                ) from exc
            with self._lock:
                if self._closed.is_set():
                    stream.close()
                    return
                self._pa, self._stream, opened = pa, stream, True
        finally:
            if not opened:
                pa.terminate()
        self.rate, self.channels = rate, channels
        self._resampler = Resampler(rate) if rate != SAMPLE_RATE else None
        self._dropped_frames = 0
        self.name = f"pyaudio:{name}"
        logger.info("opened microphone %d %r at %d Hz, %d channel(s)", index, name, rate, channels)

    def _start(self) -> None:
        with self._lock:
            stream = self._stream
            if stream is None:
                return
            try:
                stream.start_stream()
            except OSError as exc:
                raise AudioDeviceError(f"cannot start microphone {self.name}: {exc}") from exc
        self._last_data = time.monotonic()

    def _stream_alive(self) -> bool:
        with self._lock:
            stream = self._stream
        try:
            return stream is not None and bool(stream.is_active())
        except (OSError, ValueError):
            return False

    def _close_stream(self) -> None:
        with self._lock:
            stream, pa = self._stream, self._pa
            self._stream = self._pa = None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except (OSError, ValueError) as exc:
                logger.debug("closing microphone %s: %s", self.name, exc)
        if pa is not None:
            pa.terminate()

    # -- data -----------------------------------------------------------------------------------------------
    def _on_audio(self, in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
        """PortAudio's thread: queue the buffer; if the consumer is too slow, drop it and say so in the next one."""
        item = (in_data or b"", bool(status & self._pyaudio.paInputOverflow), self._dropped_frames)
        try:
            self._queue.put_nowait(item)
            self._dropped_frames = 0
        except queue.Full:
            self._dropped_frames += frame_count
        return None, self._pyaudio.paContinue

    def _convert(self, data: bytes, dropped_frames: int) -> Int16Array:
        """Device buffer → 16 kHz mono int16; buffers the queue dropped come back as zeros, in place."""
        samples = np.frombuffer(data, dtype=np.int16)
        if dropped_frames:
            samples = np.concatenate((np.zeros(dropped_frames * self.channels, dtype=np.int16), samples))
        if self._resampler is None and self.channels == 1:
            return samples.copy()
        mono = mix_to_mono(samples.reshape(-1, self.channels))
        return float_to_int16(self._resampler.process(mono) if self._resampler is not None else mono)

    def _count(self, chunk: Int16Array) -> Int16Array:
        self.stats.chunks += 1
        self.stats.samples += len(chunk)
        return chunk

    def _take(self, item: tuple[bytes, bool, int]) -> Int16Array:
        data, overflowed, dropped = item
        self.stats.overflows += int(overflowed) + int(dropped > 0)
        return self._convert(data, dropped)

    def chunks(self) -> Iterator[Int16Array]:
        """Yield chunks until ``close()`` is called (from any thread); reconnects on its own. Call it once."""
        self._start()
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                idle = time.monotonic() - self._last_data
                if self._closed.is_set() or (idle < self._stall_s and self._stream_alive()):
                    continue
                yield from self._reconnect("stream stopped" if idle < self._stall_s else f"no audio for {idle:.1f} s")
                continue
            self._last_data = time.monotonic()
            chunk = self._take(item)
            if len(chunk):
                yield self._count(chunk)

    def _reconnect(self, reason: str) -> Iterator[Int16Array]:
        """Close the lost device, yield what it left behind, reopen it, then yield zeros for the time it was away."""
        message = f"microphone {self.name} lost ({reason})"
        self.stats.errors[:] = [*self.stats.errors[-(MAX_ERRORS_KEPT - 1) :], message]
        logger.warning("%s; trying to reopen it every %.1f s", message, self.reopen_interval_s)
        self._close_stream()
        while not self._queue.empty():
            chunk = self._take(self._queue.get_nowait())
            if len(chunk):
                yield self._count(chunk)
        if self._resampler is not None:
            yield self._count(float_to_int16(self._resampler.flush()))
        lost_since = self._last_data
        attempts = 0
        while not self._closed.wait(self.reopen_interval_s):
            attempts += 1
            try:
                self._open()
                self._start()
            except AudioDeviceError as exc:
                self._close_stream()
                log = logger.info if attempts == 1 else logger.debug
                log("microphone still away (attempt %d): %s", attempts, exc)
                continue
            gap = round((time.monotonic() - lost_since) * SAMPLE_RATE)
            self.stats.reconnects += 1
            self.stats.gaps_samples += gap
            logger.warning(
                "microphone %s back after %.1f s; inserting %d samples of silence", self.name, gap / SAMPLE_RATE, gap
            )
            for start in range(0, gap, self._chunk_samples):
                yield self._count(np.zeros(min(self._chunk_samples, gap - start), dtype=np.int16))
            return

    def close(self) -> None:
        """Stop capture and release PortAudio; a running ``chunks()`` ends within a fraction of a second."""
        self._closed.set()
        self._close_stream()
