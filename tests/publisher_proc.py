"""A unit's transport in its own process, so tests can SIGKILL it mid-backlog and start it again.

    python -m tests.publisher_proc --outbox PATH --port N --unit pole-1 [--events K] [--inflight N] [--keep-running]

Puts ``K`` test events (``event_id``, ``phase``, ``seq``) into the outbox, prints ``loaded``, starts the publisher
and prints ``drained`` once the outbox is empty; then stops cleanly (exit 0), or with ``--keep-running`` waits for
SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from edge.config import MqttConfig
from edge.transport.outbox import Outbox
from edge.transport.publisher import MqttPublisher
from edge.transport.topics import Topics


def event_payload(unit: str, seq: int) -> bytes:
    return json.dumps({"event_id": f"{unit}-{seq // 2}", "phase": ("new", "final")[seq % 2], "seq": seq}).encode()


def status_payload(state: str, reasons: list[str]) -> bytes:
    return json.dumps({"state": state, "reasons": reasons}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unit", default="pole-1")
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--keep-running", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    topics = Topics(args.unit)
    outbox = Outbox(args.outbox, max_bytes=100_000_000)
    for seq in range(args.events):
        outbox.put("event", topics.event, event_payload(args.unit, seq))
    sys.stdout.write("loaded\n")
    sys.stdout.flush()

    settings = MqttConfig(
        host="127.0.0.1", port=args.port, tls=False, inflight=args.inflight, reconnect_min_s=1, reconnect_max_s=1
    )
    publisher = MqttPublisher(outbox, topics, settings, status_payload=status_payload)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    publisher.start()
    while len(outbox) and not stop.is_set():
        time.sleep(0.01)
    sys.stdout.write("drained\n")
    sys.stdout.flush()
    if args.keep_running:
        stop.wait()
    publisher.stop(clean=True)
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
