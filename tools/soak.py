"""Soak benchmark (not a test): events through the outbox and the publisher to a local mosquitto, timed end to end.

    .venv/bin/python -m tools.soak --seconds 30 --rate 100 [--inflight 20] [--port 1883] [--outbox PATH]

Without ``--port`` a private mosquitto (``/usr/sbin/mosquitto``, plain listener on a free loopback port) is started
and stopped. Each event is timed from just before ``Outbox.put()`` (the detection handing it over, fsync included)
to a subscriber in this process receiving it. Prints p50/p99/max latency, lost and duplicate events, and the outbox
depth once per second.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import MqttConfig
from edge.transport.outbox import Outbox
from edge.transport.publisher import MqttPublisher
from edge.transport.topics import Topics

MOSQUITTO = "/usr/sbin/mosquitto"


class LatencySink:
    """Subscriber that records, per seq, the receive time minus the put time carried in the payload."""

    def __init__(self, port: int, topic: str) -> None:
        self.latencies_ms: dict[int, float] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._topic = topic
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-sink", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._ready.wait(5):
            raise RuntimeError("soak subscriber got no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter_ns()
        body = json.loads(message.payload)
        with self._lock:
            if body["seq"] in self.latencies_ms:
                self.duplicates += 1
            else:
                self.latencies_ms[body["seq"]] = (now - body["t_ns"]) / 1e6

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    conf = directory / "mosquitto.conf"
    conf.write_text(f"user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    proc.terminate()
    raise RuntimeError(f"mosquitto did not start on port {port}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def soak(port: int, outbox_path: Path, seconds: float, rate: float, inflight: int) -> int:
    topics = Topics("soak-unit")
    outbox = Outbox(outbox_path, max_bytes=500_000_000)
    sink = LatencySink(port, topics.event)
    settings = MqttConfig(host="127.0.0.1", port=port, tls=False, inflight=inflight)
    publisher = MqttPublisher(
        outbox, topics, settings, status_payload=lambda state, reasons: json.dumps({"state": state}).encode()
    )
    publisher.start()
    deadline = time.monotonic() + 5
    while not publisher.stats().connected and time.monotonic() < deadline:
        time.sleep(0.01)  # steady state only: the first connect is not part of detection-to-broker latency
    filler = b"x" * 600  # about the size of a signed event
    total = int(seconds * rate)
    depth_per_second: list[int] = []
    start = time.perf_counter()
    for seq in range(total):
        due = start + seq / rate
        while (now := time.perf_counter()) < due:
            time.sleep(min(0.002, due - now))
        body = {"event_id": f"soak-{seq}", "phase": "new", "seq": seq, "pad": filler.decode()}
        body["t_ns"] = time.perf_counter_ns()
        outbox.put("event", topics.event, json.dumps(body).encode())
        publisher.wake()
        if seq % int(rate) == 0:
            depth_per_second.append(len(outbox))
    deadline = time.monotonic() + 10
    while len(sink.latencies_ms) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    publisher.stop()
    sink.close()
    outbox.close()

    latencies = list(sink.latencies_ms.values())
    lost = total - len(latencies)
    out = sys.stdout
    out.write(f"events: {total} at {rate:g}/s for {seconds:g} s, inflight {inflight}\n")
    if latencies:
        out.write(
            f"put -> subscriber latency: p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {percentile(latencies, 0.99):.2f} ms, max {max(latencies):.2f} ms\n"
        )
    out.write(f"lost: {lost}, duplicates: {sink.duplicates}\n")
    out.write(f"outbox depth at each second: {depth_per_second}\n")
    stats = publisher.stats()
    out.write(f"publisher: published {stats.published}, acked {stats.acked}, retries {stats.retries}\n")
    return 0 if lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--port", type=int, default=0, help="an already running broker on 127.0.0.1 (0 = start one)")
    parser.add_argument("--outbox", type=Path, default=None, help="outbox file (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="polewatch-soak-") as scratch:
        directory = Path(scratch)
        outbox_path = args.outbox or directory / "outbox.sqlite"
        broker = None
        port = args.port
        if not port:
            broker, port = start_broker(directory)
        try:
            return soak(port, outbox_path, args.seconds, args.rate, args.inflight)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
