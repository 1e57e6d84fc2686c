"""The MQTT publisher: drains the outbox to the broker (QoS 1, MQTT 5, mutual TLS) and deletes a row only after PUBACK.

Threads: paho's network loop (``loop_start``) only turns callbacks into items on a queue; one drain thread owns
every outbox change the publisher makes (publish, delete, bury). Taking our own lock inside a paho callback would
deadlock against ``publish()``, which holds paho's message lock while it sends.

Reconnects: on every successful CONNACK paho's in-memory copies of unacknowledged messages are dropped and the
drain starts again from the outbox, so what was in flight is re-sent (at-least-once; consumers dedupe).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import MqttConfig
from edge.errors import ConfigError
from edge.transport.outbox import Outbox, OutboxRow
from edge.transport.topics import Topics

log = logging.getLogger(__name__)

StatusPayload = Callable[[str, list[str]], bytes]
"""Builds the status message body from a state ("online", "offline", "degraded") and its reasons."""
CommandHandler = Callable[[str, bytes], None]
"""Receives a command's name (the last topic level) and payload; runs on paho's network thread, keep it short."""
MessageHandler = Callable[[str, bytes], None]
"""Receives a subscribed message's topic and payload."""
ClientFactory = Callable[[str], mqtt.Client]
"""Makes the paho client for a client id (tests pass their own)."""

_RETRY_LATER = frozenset({0x80, 0x83, 0x91, 0x97})
"""PUBACK failures that may pass later (unspecified, implementation specific, id in use, quota exceeded)."""
_IDLE_WAKE_S = 1.0


@dataclass(frozen=True)
class DeliveryStats:
    """Counters for health reports (since the publisher started)."""

    published: int = 0
    """Messages handed to the broker, retries included."""
    acked: int = 0
    retries: int = 0
    """Hand-overs of a message that had been handed over before (reconnects, restarts)."""
    dead: int = 0
    """Messages the broker refused for good (moved to the outbox's dead table)."""
    connected: bool = False
    connects: int = 0
    last_error: str = ""


def default_client_factory(client_id: str) -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)


class MqttPublisher:
    """Sends everything put into the outbox, in drain order, and hands incoming commands to ``on_command``."""

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        settings: MqttConfig,
        *,
        status_payload: StatusPayload,
        on_command: CommandHandler | None = None,
        listen: dict[str, MessageHandler] | None = None,
        client_factory: ClientFactory | None = None,
        retry_hold_s: float = 10.0,
    ) -> None:
        """``listen``: further topics (exact names) to subscribe to, each with its handler (e.g. Home Assistant's
        birth message); like ``on_command`` they run on paho's network thread."""
        self._outbox = outbox
        self._topics = topics
        self._settings = settings
        self._status_payload = status_payload
        self._on_command = on_command
        self._listen = dict(listen or {})
        self._retry_hold_s = retry_hold_s
        self._client = (client_factory or default_client_factory)(settings.client_id or topics.unit)
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._signal = threading.Event()
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._stats = DeliveryStats()
        self._status: tuple[str, list[str]] = ("online", [])
        self._thread: threading.Thread | None = None
        # owned by the drain thread
        self._connected = False
        self._limit = settings.inflight
        self._in_flight: dict[int, OutboxRow] = {}
        self._held: dict[int, float] = {}
        self._dead_topics_logged: set[str] = set()
        self._unreachable_logged = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; returns at once. Without a broker host, messages simply stay in the outbox."""
        cfg = self._settings
        if not cfg.host:
            log.warning(
                "mqtt.host is empty: no broker configured; events stay in the outbox %s (%d waiting) "
                "until a broker is set",
                self._outbox.path,
                len(self._outbox),
            )
            return
        client = self._client
        if log.isEnabledFor(logging.DEBUG):
            # paho's own log is packet-level; at other levels it only repeats what this module says
            client.enable_logger(logging.getLogger(__name__ + ".paho"))
        if cfg.tls:
            self._configure_tls()
        client.will_set(self._topics.status, self._status_payload("offline", []), qos=1, retain=True)
        client.max_inflight_messages_set(cfg.inflight + 10)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._thread = threading.Thread(target=self._drain_loop, name="mqtt-drain", daemon=True)
        self._thread.start()
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=True)
        client.loop_start()
        log.info(
            "MQTT publisher for %s connecting to %s:%d (%s); %d messages waiting in the outbox",
            self._topics.unit,
            cfg.host,
            cfg.port,
            "mutual TLS" if cfg.tls else "no TLS",
            len(self._outbox),
        )

    def _configure_tls(self) -> None:
        cfg = self._settings
        missing = [
            f"mqtt.{key} = {getattr(cfg, key)!r}: file not found"
            for key in ("ca_file", "cert_file", "key_file")
            if not Path(getattr(cfg, key)).is_file()
        ]
        if missing:
            raise ConfigError(missing)
        try:
            self._client.tls_set(
                ca_certs=cfg.ca_file,
                certfile=cfg.cert_file,
                keyfile=cfg.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                [f"mqtt TLS files {cfg.ca_file}, {cfg.cert_file}, {cfg.key_file}: cannot be used ({exc})"]
            ) from exc

    def stop(self, clean: bool = True, timeout_s: float = 2.0) -> None:
        """Stop sending; unsent messages stay in the outbox for the next start.

        ``clean``: announce retained status ``offline`` (waiting up to ``timeout_s`` for its PUBACK) and disconnect
        so the broker discards the will. Otherwise disconnect asking the broker to publish the will (offline).
        """
        self._stopping.set()
        self._signal.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s + 5.0)
        if not self._settings.host or self._thread is None:
            return
        client = self._client
        if clean:
            if self._connected:
                info = client.publish(self._topics.status, self._status_payload("offline", []), qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout=timeout_s)
                except (RuntimeError, ValueError) as exc:
                    log.warning("offline status not sent before disconnecting: %s", exc)
            client.disconnect()
        else:
            client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        client.loop_stop()
        self._thread = None
        with self._stats_lock:
            self._stats = replace(self._stats, connected=False)
        log.info("MQTT publisher stopped; %d messages left in the outbox", len(self._outbox))

    def wake(self) -> None:
        """Drain now (call after a put); safe from any thread."""
        self._signal.set()

    def set_status(self, state: str, reasons: list[str]) -> None:
        """Announce a new retained status (e.g. degraded with reasons); also what the next connect announces."""
        self._status = (state, list(reasons))
        payload = self._status_payload(state, list(reasons))
        self._outbox.put("status", self._topics.status, payload, qos=1, retain=True, replace=True)
        self.wake()

    def stats(self) -> DeliveryStats:
        with self._stats_lock:
            return self._stats

    def _count(self, *, connected: bool | None = None, last_error: str | None = None, **increments: int) -> None:
        with self._stats_lock:
            stats = self._stats
            changes: dict[str, Any] = {key: getattr(stats, key) + value for key, value in increments.items()}
            if connected is not None:
                changes["connected"] = connected
            if last_error is not None:
                changes["last_error"] = last_error
            self._stats = replace(stats, **changes)

    # -- paho callbacks (network thread): only hand over ------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        if reason_code.is_failure:
            # the TCP/TLS link is up but the broker refused us: not connected (bad cert, ACL, client id)
            message = f"broker {self._settings.host}:{self._settings.port} refused the connection: {reason_code}"
            log.error("%s", message)
            self._count(last_error=message)
            return
        client.drop_out_messages()
        state, reasons = self._status
        client.publish(self._topics.status, self._status_payload(state, reasons), qos=1, retain=True)
        client.subscribe([(self._topics.commands, 1), *((topic, 1) for topic in self._listen)])
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self._events.put(("connected", receive_maximum))
        self._signal.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._events.put(("unreachable",))
        self._signal.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._events.put(("disconnected", str(reason_code)))
        self._signal.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        self._events.put(("ack", mid, reason_code))
        self._signal.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error(
                "broker refused the subscription to %s (%s): commands will not reach this unit; check the ACL",
                self._topics.commands,
                ", ".join(refused),
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        handler = self._listen.get(message.topic)
        if handler is not None:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:
                log.exception("handling %s failed", message.topic)
            return
        prefix = self._topics.base + "/cmd/"
        if not message.topic.startswith(prefix) or self._on_command is None:
            return
        name = message.topic[len(prefix) :]
        try:
            self._on_command(name, bytes(message.payload))
        except Exception:
            log.exception("command %s failed", name)

    # -- the drain thread ------------------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._signal.wait(timeout=_IDLE_WAKE_S)
            self._signal.clear()
            try:
                self._handle_events()
                if self._connected and not self._stopping.is_set():
                    self._fill()
                failures = 0
            except Exception as exc:
                # the outbox failing (I/O error) must not kill delivery for good; back off and count it
                failures += 1
                log.exception("MQTT drain failed (%d in a row); retrying", failures)
                self._count(last_error=f"drain failed: {exc}")
                self._stopping.wait(min(60.0, 2.0**failures))

    def _handle_events(self) -> None:
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return
            kind = item[0]
            if kind == "ack":
                self._handle_ack(item[1], item[2])
            elif kind == "connected":
                self._in_flight.clear()  # paho dropped them; they are re-sent from the outbox
                self._connected = True
                self._unreachable_logged = False
                self._limit = min(self._settings.inflight, item[1] or self._settings.inflight)
                self._count(connected=True, connects=1)
                log.info(
                    "connected to MQTT broker %s:%d; %d messages waiting in the outbox",
                    self._settings.host,
                    self._settings.port,
                    len(self._outbox),
                )
            elif kind == "disconnected":
                if self._connected:
                    log.warning(
                        "lost the MQTT broker (%s); messages wait in the outbox, reconnecting with backoff", item[1]
                    )
                    self._count(connected=False, last_error=f"disconnected: {item[1]}")
                self._connected = False
            elif kind == "unreachable" and not self._unreachable_logged:
                self._unreachable_logged = True
                message = f"cannot reach MQTT broker {self._settings.host}:{self._settings.port}"
                log.warning("%s; messages wait in the outbox, retrying with backoff", message)
                self._count(last_error=message)

    def _handle_ack(self, mid: int, reason_code: ReasonCode) -> None:
        row = self._in_flight.pop(mid, None)
        if row is None:
            return  # a status message, or a message from before a reconnect (already re-sent)
        if not reason_code.is_failure:
            self._outbox.delete(row.id)
            self._count(acked=1)
        elif reason_code.value in _RETRY_LATER:
            self._held[row.id] = time.monotonic() + self._retry_hold_s
            self._count(last_error=f"{row.topic}: {reason_code}; retrying later")
        else:
            self._outbox.bury(row.id, str(reason_code))
            self._count(dead=1, last_error=f"{row.topic}: {reason_code}")
            if row.topic not in self._dead_topics_logged:
                self._dead_topics_logged.add(row.topic)
                log.error(
                    "broker refused a %s message on %s: %s. It is kept in the outbox's dead table, not retried; "
                    "check the broker ACL for this unit's certificate (further refusals on this topic are counted "
                    "in health, not logged)",
                    row.kind,
                    row.topic,
                    reason_code,
                )

    def _fill(self) -> None:
        room = self._limit - len(self._in_flight)
        if room <= 0:
            return
        now = time.monotonic()
        self._held = {row_id: until for row_id, until in self._held.items() if until > now}
        busy = {row.id for row in self._in_flight.values()} | set(self._held)
        for row in self._outbox.peek(room, exclude=busy):
            info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                break
            # MQTT_ERR_NO_CONN: paho keeps it and the next CONNACK resets everything anyway
            self._in_flight[info.mid] = row
            self._outbox.mark_attempt(row.id)
            self._count(published=1, retries=1 if row.attempts else 0)
