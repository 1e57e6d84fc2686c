"""A real mosquitto per test (plain, or mutual TLS with the shipped ACL) and a subscriber that records messages."""

from __future__ import annotations

import json
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

READY_TIMEOUT_S = 5.0


def tls_conf(directory: Path, port: int, certs: Path, prefix: str) -> Path:
    """The shipped template and ACL, rendered for a test."""
    return render(prefix=prefix, port=port, certs=certs, out=directory, user="root")


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
