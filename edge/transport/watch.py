"""A minimal MQTT subscriber that hands every message to a callback (``polewatch demo`` shows what central sees)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.errors import PolewatchError


class Watcher:
    def __init__(self, host: str, port: int, topic: str, on_message: Callable[[str, bytes], None]) -> None:
        self._on_message_cb = on_message
        self._topic = topic
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="polewatch-watcher", protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(5.0):
            self.close()
            raise PolewatchError(f"could not subscribe to {topic} on {host}:{port}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self._topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_message_cb(message.topic, bytes(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
