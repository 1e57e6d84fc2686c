"""PyAudioSource: real PortAudio capture without a sound card, and the reconnect/overflow logic on a fake.

Real tests: ALSA's ``file`` plugin over the ``null`` PCM, configured by a ``.asoundrc`` in a temporary HOME, makes
PortAudio read a raw file as a microphone. PortAudio reads the ALSA config when it initialises, so each real
capture runs in a subprocess with ``HOME`` set. The plugin is not paced and returns garbage past the end of its
file, so the tests capture exactly the known length.

Device loss cannot be produced with that plugin (its stream never fails), so reconnection, overflow counting and
device selection are tested through the ``pyaudio_module`` seam with :class:`FakePyAudio`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.audio.pyaudio_source import PyAudioSource, list_input_devices
from edge.audio.resample import Resampler, float_to_int16
from edge.audio.source import Int16Array
from edge.errors import AudioDeviceError

# -- real PortAudio through ALSA's file plugin -----------------------------------------------------------------

CAPTURE_SCRIPT = """
import json, sys
import numpy as np
from edge.audio.factory import open_source
from edge.audio.pyaudio_source import list_input_devices
from edge.errors import AudioDeviceError

args = json.loads(sys.argv[1])
result = {"devices": list_input_devices()}
try:
    source = open_source("pyaudio", device=args["device"], device_rate=args["rate"], chunk_ms=100)
except AudioDeviceError as exc:
    result["error"] = str(exc)
else:
    parts, total = [], 0
    for chunk in source.chunks():
        parts.append(chunk)
        total += len(chunk)
        if total >= args["n"]:
            break
    source.close()
    source.close()
    np.save(args["out"], np.concatenate(parts)[: args["n"]])
    result.update(name=source.name, rate=source.rate, channels=source.channels, overflows=source.stats.overflows)
print(json.dumps(result))
"""


def run_capture(home: Path, *, device: str = "", rate: int = 0, n: int = 0) -> dict[str, Any]:
    """Run CAPTURE_SCRIPT under ``HOME=home``; returns its JSON result (plus ``samples`` when it captured)."""
    pytest.importorskip("pyaudio")
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)  # alsa-lib also reads $XDG_CONFIG_HOME/alsa/asoundrc
    out = home / "captured.npy"
    args = json.dumps({"device": device, "rate": rate, "n": n, "out": str(out)})
    proc = subprocess.run(
        [sys.executable, "-c", CAPTURE_SCRIPT, args], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if out.exists():
        result["samples"] = np.load(out)
    return result


def file_microphone(home: Path, samples: Int16Array) -> None:
    """Make ALSA's default capture device (and one named "filemic") read ``samples`` as raw int16."""
    infile, sink = home / "in.raw", home / "sink.raw"
    samples.astype("<i2").tofile(infile)
    (home / ".asoundrc").write_text(
        f'pcm.filemic {{ type file slave.pcm "null" file "{sink}" infile "{infile}" format "raw" }}\n'
        'pcm.!default { type plug slave.pcm "filemic" }\n'
    )


def known_samples(n: int) -> Int16Array:
    return np.random.default_rng(7).integers(-30_000, 30_000, n, dtype=np.int16)


@pytest.mark.parametrize("device", ["", "FileMic", "0"])
def test_real_capture_at_16k_is_bit_exact(tmp_path: Path, device: str) -> None:
    samples = known_samples(24_000)
    file_microphone(tmp_path, samples)
    result = run_capture(tmp_path, device=device, n=len(samples))
    assert "error" not in result, result["error"]
    assert [0, "filemic"] in [d[:2] for d in result["devices"]]
    assert (result["rate"], result["channels"]) == (16_000, 1)
    assert np.array_equal(result["samples"], samples)


def test_real_capture_at_48k_is_resampled(tmp_path: Path) -> None:
    samples = known_samples(48_000)
    file_microphone(tmp_path, samples)
    n = 15_000  # the resampler holds back its last few outputs until it sees later input
    result = run_capture(tmp_path, device="filemic", rate=48_000, n=n)
    assert (result["rate"], result["channels"]) == (48_000, 1)
    expected = float_to_int16(Resampler(48_000).process(samples.astype(np.float32) / 32768))[:n]
    assert np.array_equal(result["samples"], expected)


def test_real_unknown_device_name_lists_what_exists(tmp_path: Path) -> None:
    file_microphone(tmp_path, known_samples(100))
    error = run_capture(tmp_path, device="USB PnP")["error"]
    assert "no microphone matches audio.device='USB PnP'" in error
    assert "0 'filemic'" in error and "arecord -l" in error and "\n" not in error


@pytest.mark.parametrize("device", ["", "USB PnP", "3"])
def test_real_no_sound_card_gives_a_technician_message(tmp_path: Path, device: str) -> None:
    result = run_capture(tmp_path, device=device)  # no .asoundrc and no sound card: PortAudio lists nothing
    assert result["devices"] == []
    assert result["error"] == (
        "no microphone found: PortAudio lists 0 input devices; "
        "check the USB microphone is plugged in (arecord -l) or set audio.device"
    )


# -- a scripted fake of the pyaudio module ---------------------------------------------------------------------

Callback = Callable[[bytes | None, int, Any, int], tuple[None, int]]


class FakeStream:
    """Feeds its script to the callback: ``burst`` buffers synchronously in start_stream, the rest on a thread."""

    def __init__(self, world: FakeWorld, kwargs: dict[str, Any]) -> None:
        self.world, self.kwargs = world, kwargs
        self.callback: Callback = kwargs["stream_callback"]
        self.script = world.scripts.pop(0) if world.scripts else FakeScript([])
        self.active = False
        self.closed = False
        self._thread = threading.Thread(target=self._feed, daemon=True)

    def start_stream(self) -> None:
        self.active = True
        for data, status in self.script.buffers[: self.script.burst]:
            self.callback(data, len(data) // 2, {}, status)
        self._thread.start()

    def _feed(self) -> None:
        time.sleep(self.script.delay_s)
        for data, status in self.script.buffers[self.script.burst :]:
            if self.closed:
                return
            self.callback(data, len(data) // 2 // self.kwargs["channels"], {}, status)
            time.sleep(0.005)
        if self.script.then_vanish:
            self.world.present = False
            self.active = False

    def is_active(self) -> bool:
        return self.active

    def stop_stream(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True


class FakeScript:
    def __init__(
        self, buffers: list[tuple[bytes, int]], *, burst: int = 0, delay_s: float = 0.0, then_vanish: bool = False
    ) -> None:
        self.buffers, self.burst, self.delay_s, self.then_vanish = buffers, burst, delay_s, then_vanish


class FakeWorld:
    """What the fake PortAudio sees: devices (while ``present``), supported formats, scripts for each stream."""

    def __init__(self, devices: list[tuple[str, int, int]], *, default: int = 0) -> None:
        self.devices = devices
        self.default = default
        self.present = True
        self.formats = {(16_000, 1)}
        self.scripts: list[FakeScript] = []
        self.streams: list[FakeStream] = []
        self.open_error: OSError | None = None


class FakePortAudio:
    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.terminated = False

    def _visible(self) -> list[tuple[str, int, int]]:
        return self.world.devices if self.world.present else []

    def get_device_count(self) -> int:
        return len(self._visible())

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        name, channels, rate = self._visible()[index]
        return {"index": index, "name": name, "maxInputChannels": channels, "defaultSampleRate": float(rate)}

    def get_default_input_device_info(self) -> dict[str, Any]:
        if not self._visible():
            raise OSError(-9996, "No Default Input Device Available")
        return self.get_device_info_by_index(self.world.default)

    def is_format_supported(self, rate: int, **kwargs: Any) -> bool:
        if (rate, kwargs["input_channels"]) not in self.world.formats:
            raise ValueError("Invalid sample rate", -9997)
        return True

    def open(self, **kwargs: Any) -> FakeStream:
        if self.world.open_error is not None:
            raise self.world.open_error
        stream = FakeStream(self.world, kwargs)
        self.world.streams.append(stream)
        return stream

    def terminate(self) -> None:
        self.terminated = True


class FakePyAudio:
    """Stands in for the ``pyaudio`` module."""

    paInt16 = 8
    paContinue = 0
    paInputOverflow = 2

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def PyAudio(self) -> FakePortAudio:
        return FakePortAudio(self.world)


USB = ("USB PnP Sound Device: Audio (hw:1,0)", 1, 48_000)


def ramp(start: int, n: int = 1_600) -> bytes:
    return np.arange(start, start + n, dtype=np.int16).tobytes()


def take(source: PyAudioSource, n_samples: int, timeout_s: float = 5.0) -> Int16Array:
    """The first ``n_samples`` the source yields (fails instead of hanging)."""
    got: list[Int16Array] = []
    deadline = time.monotonic() + timeout_s
    for chunk in source.chunks():
        got.append(chunk)
        if sum(map(len, got)) >= n_samples:
            break
        assert time.monotonic() < deadline, f"only {sum(map(len, got))} of {n_samples} samples"
    return np.concatenate(got)[:n_samples]


def test_device_away_and_back_fills_the_gap_with_silence(caplog: pytest.LogCaptureFixture) -> None:
    world = FakeWorld([USB])
    world.scripts = [
        FakeScript([(ramp(0), 0), (ramp(1_600), 0), (ramp(3_200), 0)], then_vanish=True),
        FakeScript([(ramp(10_000), 0), (ramp(11_600), 0)]),
    ]
    source = PyAudioSource("usb", chunk_ms=100, reopen_interval_s=0.05, pyaudio_module=FakePyAudio(world))
    threading.Timer(0.4, lambda: setattr(world, "present", True)).start()
    with caplog.at_level(logging.INFO, logger="edge.audio.pyaudio_source"):
        got: list[Int16Array] = []
        for chunk in source.chunks():
            got.append(chunk)
            if source.stats.reconnects and np.concatenate(got)[-1] == 11_600 + 1_599:
                break
    source.close()
    out = np.concatenate(got)
    gap = source.stats.gaps_samples
    assert source.stats.reconnects == 1
    assert 0.35 * 16_000 <= gap <= 1.0 * 16_000
    assert np.array_equal(out[:4_800], np.arange(4_800))
    assert not out[4_800 : 4_800 + gap].any()
    assert np.array_equal(out[4_800 + gap :], np.arange(10_000, 13_200))
    assert source.stats.samples == len(out)
    assert len(source.stats.errors) == 1 and "lost" in source.stats.errors[0]
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost" in m and "reopen" in m for m in messages)
    assert any("back after" in m for m in messages)
    assert all(s.closed for s in world.streams)


def test_device_that_never_comes_back_still_closes_promptly() -> None:
    world = FakeWorld([USB])
    world.scripts = [FakeScript([(ramp(0), 0)], then_vanish=True)]
    source = PyAudioSource("", reopen_interval_s=0.05, pyaudio_module=FakePyAudio(world))
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(len(c) for c in source.chunks()))
    reader.start()
    time.sleep(0.5)
    source.close()
    reader.join(timeout=1.0)
    assert not reader.is_alive()
    assert got == [1_600] and source.stats.reconnects == 0


def test_input_overflow_flag_is_counted() -> None:
    world = FakeWorld([USB])
    world.scripts = [FakeScript([(ramp(0), 0), (ramp(1_600), FakePyAudio.paInputOverflow), (ramp(3_200), 0)])]
    source = PyAudioSource("", pyaudio_module=FakePyAudio(world))
    assert np.array_equal(take(source, 4_800), np.arange(4_800))
    source.close()
    assert source.stats.overflows == 1


def test_buffers_dropped_by_a_slow_consumer_come_back_as_silence() -> None:
    """A 1 s chunk makes a 5-buffer queue: a burst of 20 drops 15, which return as zeros before the next buffer."""
    world = FakeWorld([USB])
    burst = [(ramp(0, 16_000), 0) for _ in range(20)]
    world.scripts = [FakeScript([*burst, (ramp(100, 16_000), 0)], burst=20, delay_s=0.2)]
    source = PyAudioSource("", chunk_ms=1_000, pyaudio_module=FakePyAudio(world))
    out = take(source, 21 * 16_000)
    source.close()
    assert np.array_equal(out[: 5 * 16_000], np.tile(np.arange(16_000), 5))
    assert not out[5 * 16_000 : 20 * 16_000].any()
    assert np.array_equal(out[20 * 16_000 :], np.arange(100, 16_100))
    assert source.stats.overflows == 1


def test_device_choice_by_name_index_or_default() -> None:
    world = FakeWorld([("HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2, 44_100), ("HDMI out", 0, 48_000), USB])
    world.default = 0
    world.formats = {(16_000, 1)}
    module = FakePyAudio(world)
    assert PyAudioSource("usb pnp", pyaudio_module=module).name == f"pyaudio:{USB[0]}"
    assert PyAudioSource("2", pyaudio_module=module).name == f"pyaudio:{USB[0]}"
    assert PyAudioSource("", pyaudio_module=module).name.startswith("pyaudio:HDA Intel")
    with pytest.raises(AudioDeviceError, match=r"no input device with index 1: PortAudio lists 2 input devices"):
        PyAudioSource("1", pyaudio_module=module)  # an output-only device is not a microphone
    assert [d[0] for d in list_input_devices(pyaudio_module=module)] == [0, 2]


def test_device_without_16k_is_opened_at_its_rate_and_resampled() -> None:
    world = FakeWorld([USB])
    world.formats = {(48_000, 1)}
    tone = (np.sin(2 * np.pi * 1_000 * np.arange(48_000) / 48_000) * 16_000).astype(np.int16)
    world.scripts = [FakeScript([(tone[i : i + 4_800].tobytes(), 0) for i in range(0, 48_000, 4_800)])]
    source = PyAudioSource("usb", pyaudio_module=FakePyAudio(world))
    assert (source.rate, world.streams[0].kwargs["frames_per_buffer"]) == (48_000, 4_800)
    out = take(source, 15_000)
    source.close()
    expected = float_to_int16(Resampler(48_000).process(tone.astype(np.float32) / 32768))[:15_000]
    assert np.array_equal(out, expected)


def test_stereo_only_device_is_mixed_down() -> None:
    world = FakeWorld([("USB stereo", 2, 16_000)])
    world.formats = {(16_000, 2)}
    frames = np.stack([np.full(1_600, 1_000), np.full(1_600, 3_000)], axis=1).astype(np.int16)
    world.scripts = [FakeScript([(frames.tobytes(), 0)])]
    source = PyAudioSource("", pyaudio_module=FakePyAudio(world))
    assert source.channels == 2
    assert take(source, 1_600).tolist() == [2_000] * 1_600
    source.close()


def test_busy_device_says_what_to_check() -> None:
    world = FakeWorld([USB])
    world.open_error = OSError(-9985, "Device unavailable")
    with pytest.raises(AudioDeviceError, match=r"cannot open microphone 0 'USB PnP.*another program"):
        PyAudioSource("", pyaudio_module=FakePyAudio(world))


def test_missing_pyaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyaudio", None)
    with pytest.raises(AudioDeviceError, match=r"pip install 'polewatch\[pi\]'.*apt install libportaudio2"):
        PyAudioSource()


def test_close_is_idempotent_and_stops_an_idle_reader() -> None:
    world = FakeWorld([USB])
    source = PyAudioSource("", pyaudio_module=FakePyAudio(world))
    reader = threading.Thread(target=lambda: list(source.chunks()))
    reader.start()
    time.sleep(0.3)
    source.close()
    source.close()
    reader.join(timeout=1.0)
    assert not reader.is_alive()
