"""A real mosquitto on a free loopback port, for ``polewatch demo`` and the tests (never for a pole unit)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from edge.errors import PolewatchError

READY_TIMEOUT_S = 5.0


class BrokerError(PolewatchError, RuntimeError):
    """The local mosquitto could not be started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if found is None:
        raise BrokerError("mosquitto is not installed: apt-get install mosquitto (tools/setup.sh does it)")
    return found


def plain_conf(directory: Path, port: int, *, persistence: bool = False) -> Path:
    """Anonymous plain listener on 127.0.0.1:port; ``persistence`` keeps sessions across a restart."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "user root",
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 100000",
        "log_dest stderr",
        "log_type all",
    ]
    lines += (
        ["persistence true", f"persistence_location {directory}/", "autosave_interval 3600"]
        if persistence
        else ["persistence false"]
    )
    conf = directory / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


class Broker:
    """One mosquitto process on a fixed port; can be stopped and started again on the same port."""

    def __init__(self, conf: Path, port: int) -> None:
        self.conf = conf
        self.port = port
        self.log_path = conf.with_name("mosquitto.log")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self._proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.01)
        raise BrokerError(f"mosquitto did not listen on {self.port} within {READY_TIMEOUT_S} s:\n{self.log()}")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
