"""File replay, the in-memory source and the source factory; every fixture is generated in tmp_path."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from edge.audio.factory import open_source
from edge.audio.file_source import ArraySource, FileSource, load_audio
from edge.audio.resample import float_to_int16
from edge.audio.source import AudioSource, Int16Array
from edge.errors import AudioError, ConfigError


def noise_int16(n: int, seed: int = 0) -> Int16Array:
    return np.random.default_rng(seed).integers(-20_000, 20_000, n, dtype=np.int16)


def tone(freq_hz: float, rate: int, seconds: float, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def rms_amplitude(x: Int16Array) -> float:
    """Peak amplitude (full scale 1.0) of a sine, from its RMS."""
    return math.sqrt(2) * float(np.sqrt(np.mean((x.astype(np.float64) / 32768) ** 2)))


def peak_hz(x: Int16Array) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * 16_000 / len(x)


@pytest.fixture
def wav16(tmp_path: Path) -> tuple[Path, Int16Array]:
    samples = noise_int16(16_000 + 123)
    path = tmp_path / "mono16k.wav"
    sf.write(path, samples, 16_000, subtype="PCM_16")
    return path, samples


# -- formats -------------------------------------------------------------------------------------------------
def test_int16_wav_at_16k_is_read_bit_exactly(wav16: tuple[Path, Int16Array]) -> None:
    path, samples = wav16
    assert np.array_equal(load_audio(path), samples)


def test_float32_wav_is_converted_with_clipping(tmp_path: Path) -> None:
    data = np.array([0.0, 0.5, -0.25, 1.5, -3.0, 1e-5], dtype=np.float32)
    path = tmp_path / "float.wav"
    sf.write(path, data, 16_000, subtype="FLOAT")
    out = load_audio(path)
    assert out.dtype == np.int16
    assert out.tolist() == float_to_int16(data).tolist() == [0, 16384, -8192, 32767, -32768, 0]


def test_stereo_44k1_flac_becomes_16k_mono(tmp_path: Path) -> None:
    left, right = tone(1_000, 44_100, 1.0, 0.6), tone(1_000, 44_100, 1.0, 0.2)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), 44_100, subtype="PCM_16")
    out = load_audio(path)
    assert out.dtype == np.int16 and out.ndim == 1
    assert len(out) == math.ceil(44_100 * 16_000 / 44_100)
    assert rms_amplitude(out[1000:-1000]) == pytest.approx(0.4, abs=0.01)  # mean of 0.6 and 0.2
    assert peak_hz(out) == pytest.approx(1_000, abs=2)


def test_ogg_vorbis_at_48k_becomes_16k_mono(tmp_path: Path) -> None:
    path = tmp_path / "tone.ogg"
    sf.write(path, tone(2_000, 48_000, 1.0), 48_000, format="OGG", subtype="VORBIS")
    out = load_audio(path)
    assert len(out) == 16_000
    assert peak_hz(out) == pytest.approx(2_000, abs=2)
    assert rms_amplitude(out[1000:-1000]) == pytest.approx(0.5, abs=0.05)  # lossy codec


@pytest.mark.parametrize("chunk_samples", [1, 160, 1600, 4000, 100_000])
def test_chunking_changes_nothing_but_chunk_lengths(tmp_path: Path, chunk_samples: int) -> None:
    path = tmp_path / "s.flac"
    sf.write(path, tone(440, 44_100, 0.7), 44_100)
    source = FileSource(path, chunk_samples=chunk_samples)
    chunks = list(source.chunks())
    assert all(len(c) == chunk_samples for c in chunks[:-1]) and 0 < len(chunks[-1]) <= chunk_samples
    assert np.array_equal(np.concatenate(chunks), load_audio(path))
    assert source.stats.chunks == len(chunks) and source.stats.samples == sum(map(len, chunks))


# -- errors --------------------------------------------------------------------------------------------------
def assert_one_line_naming(exc: pytest.ExceptionInfo[AudioError], path: Path, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as exc:
        FileSource(path)
    assert_one_line_naming(exc, path, "not found", "check the path")
    with pytest.raises(OSError):  # AudioError is an OSError, as callers may expect
        load_audio(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as exc:
        load_audio(tmp_path)
    assert_one_line_naming(exc, tmp_path, "directory", "WAV, FLAC or OGG")


def test_file_with_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.int16), 16_000)
    with pytest.raises(AudioError) as exc:
        FileSource(path)
    assert_one_line_naming(exc, path, "0 frames")


def test_file_with_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "zero.flac"
    path.touch()
    with pytest.raises(AudioError) as exc:
        FileSource(path)
    assert_one_line_naming(exc, path, "0 bytes")


def test_garbage_with_a_wav_extension(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(5_000))
    with pytest.raises(AudioError) as exc:
        FileSource(path)
    assert_one_line_naming(exc, path, "not a supported audio format", "supported: WAV, FLAC or OGG", "ffmpeg")


# -- pacing, loop, close -------------------------------------------------------------------------------------
def test_realtime_paces_like_a_microphone(tmp_path: Path) -> None:
    path = tmp_path / "half.wav"
    sf.write(path, noise_int16(8_000), 16_000)
    start = time.monotonic()
    n = sum(len(c) for c in FileSource(path, chunk_samples=800, realtime=True).chunks())
    elapsed = time.monotonic() - start
    assert n == 8_000
    assert 0.45 <= elapsed < 1.5


def test_fast_replay_does_not_wait(wav16: tuple[Path, Int16Array]) -> None:
    start = time.monotonic()
    list(FileSource(wav16[0]).chunks())
    assert time.monotonic() - start < 0.5


def test_loop_repeats_the_file(wav16: tuple[Path, Int16Array]) -> None:
    path, samples = wav16
    source = FileSource(path, chunk_samples=1000, loop=True)
    out: list[Int16Array] = []
    for chunk in source.chunks():
        out.append(chunk)
        if sum(map(len, out)) >= 3.5 * len(samples):
            break
    source.close()
    joined = np.concatenate(out)
    n = len(samples)
    for k in range(3):
        assert np.array_equal(joined[k * n : (k + 1) * n], samples)


def test_close_from_another_thread_stops_realtime_replay(wav16: tuple[Path, Int16Array]) -> None:
    source = FileSource(wav16[0], chunk_samples=1600, realtime=True, loop=True)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(len(c) for c in source.chunks()))
    reader.start()
    time.sleep(0.35)
    source.close()
    reader.join(timeout=1.0)
    assert not reader.is_alive()
    assert 1 <= len(got) <= 5


def test_close_is_idempotent_and_a_closed_source_says_so(wav16: tuple[Path, Int16Array]) -> None:
    with FileSource(wav16[0]) as source:
        pass
    source.close()
    with pytest.raises(AudioError, match="closed"):
        next(source.chunks())


def test_chunks_can_be_replayed_from_the_start(wav16: tuple[Path, Int16Array]) -> None:
    source = FileSource(wav16[0])
    assert np.array_equal(np.concatenate(list(source.chunks())), np.concatenate(list(source.chunks())))


# -- ArraySource ---------------------------------------------------------------------------------------------
def test_array_source_replays_the_array() -> None:
    samples = noise_int16(4_000)
    source = ArraySource(samples, chunk_samples=1_500)
    chunks = list(source.chunks())
    assert [len(c) for c in chunks] == [1_500, 1_500, 1_000]
    assert np.array_equal(np.concatenate(chunks), samples)
    assert source.stats.samples == 4_000


def test_array_source_loop_and_close() -> None:
    samples = noise_int16(1_000)
    source = ArraySource(samples, chunk_samples=400, loop=True)
    out = []
    for chunk in source.chunks():
        out.append(chunk)
        if len(out) == 7:
            source.close()
    assert len(out) == 7
    assert np.array_equal(np.concatenate(out)[1_000:2_000], samples)


def test_array_source_wants_int16_mono() -> None:
    with pytest.raises(ValueError, match="int16"):
        ArraySource(np.zeros(10, dtype=np.float32))


# -- factory -------------------------------------------------------------------------------------------------
def test_factory_opens_a_file_source(wav16: tuple[Path, Int16Array]) -> None:
    source: AudioSource = open_source("file", file=str(wav16[0]), chunk_ms=50, realtime=False)
    assert isinstance(source, FileSource) and source.chunk_samples == 800
    assert np.array_equal(np.concatenate(list(source.chunks())), wav16[1])
    source.close()


def test_factory_errors_name_the_config_key() -> None:
    with pytest.raises(ConfigError, match=r"audio\.file"):
        open_source("file")
    with pytest.raises(ConfigError, match=r"audio\.source.*'alsa'.*pyaudio, file"):
        open_source("alsa")
