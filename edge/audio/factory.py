"""The one place that chooses an audio source; each back-end module is imported only when it is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.audio.source import SAMPLE_RATE, AudioSource
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import AudioConfig

SOURCE_KINDS = ("pyaudio", "file")


def open_source(
    kind: str,
    *,
    device: str = "",
    device_rate: int = 0,
    chunk_ms: int = 100,
    file: str = "",
    realtime: bool = True,
    loop: bool = False,
    reopen_interval_s: float = 2.0,
) -> AudioSource:
    """Build the source named by ``kind`` ("pyaudio" or "file") from the ``audio`` config values.

    ``chunk_ms`` is the audio per chunk in milliseconds; ``device_rate`` in Hz (0 = automatic). Raises
    :class:`~edge.errors.AudioError` when the file or microphone cannot be opened.
    """
    if kind == "pyaudio":
        from edge.audio.pyaudio_source import PyAudioSource

        return PyAudioSource(device, device_rate, chunk_ms, reopen_interval_s)
    if kind == "file":
        if not file:
            raise ConfigError(['audio.file: required when audio.source = "file"; set it to the path of the audio file'])
        from edge.audio.file_source import FileSource

        return FileSource(file, chunk_samples=SAMPLE_RATE * chunk_ms // 1000, realtime=realtime, loop=loop)
    raise ConfigError([f"audio.source: unknown source {kind!r}; use one of {', '.join(SOURCE_KINDS)}"])


def open_configured(audio: AudioConfig) -> AudioSource:
    """The source the ``[audio]`` section of a unit's config names."""
    return open_source(
        audio.source,
        device=audio.device,
        device_rate=audio.device_rate,
        chunk_ms=audio.chunk_ms,
        file=audio.file,
        realtime=audio.realtime,
        loop=audio.loop,
        reopen_interval_s=audio.reopen_interval_s,
    )
