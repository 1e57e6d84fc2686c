"""A real mosquitto per test (plain, or mutual TLS with the shipped ACL) and a subscriber that records messages."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.certs import ClientFiles
from tools.broker.render import render

MOSQUITTO = "/usr/sbin/mosquitto"
READY_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def tls_conf(directory: Path, port: int, certs: Path, prefix: str) -> Path:
    """The shipped template and ACL, rendered for a test."""
    return render(prefix=prefix, port=port, certs=certs, out=directory, user="root")


class Broker:
    """One mosquitto process on a fixed port; can be stopped and started again on the same port."""

    def __init__(self, conf: Path, port: int) -> None:
        self.conf = conf
        self.port = port
        self.log_path = conf.with_name("mosquitto.log")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.01)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {READY_TIMEOUT_S} s:\n{self.log()}")

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


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float
    """time.monotonic() when it arrived."""

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client (MQTT 5) that records every message; with ``persistent`` its session outlives a broker restart
    (the broker must run with persistence), so nothing published while it reconnects is missed."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "test-subscriber",
        tls: ClientFiles | None = None,
        persistent: bool = False,
    ) -> None:
        self.topics = topics
        self.messages: list[Received] = []
        self.suback: list[ReasonCode] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        if persistent:
            # mosquitto 2.0.11 does not restore an MQTT 5 session (session expiry) from its database after a
            # restart; an MQTT 3.1.1 clean_session=false session it does
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
            )
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if tls:
            self.client.tls_set(str(tls.ca_file), str(tls.cert_file), str(tls.key_file))
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(READY_TIMEOUT_S):
            raise RuntimeError("test subscriber got no SUBACK")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if not rc.is_failure and not flags.session_present:  # a restored session keeps its subscriptions
            client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any) -> None:
        self.suback = list(codes)
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            received = Received(message.topic, bytes(message.payload), bool(message.retain), time.monotonic())
            self.messages.append(received)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [message for message in self.messages if message.topic == topic]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, condition: Callable[[list[Received]], bool], timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self.all()):
                return True
            time.sleep(0.01)
        return condition(self.all())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
