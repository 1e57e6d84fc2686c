"""The outbox: drain order, the bound (events never dropped), corruption set aside, disk full, threads."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from edge.errors import OutboxFullError, PolewatchError
from edge.transport.outbox import Outbox

TOPIC = "polewatch/v1/pole-1/"


def payload(seq: int, size: int = 0) -> bytes:
    return f'{{"seq": {seq}}}'.encode().ljust(size or 1, b" ")


def open_outbox(tmp_path: Path, *, max_bytes: int = 10_000_000, max_rows: int = 200_000) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite", max_bytes=max_bytes, max_rows=max_rows)


def test_peek_drains_events_then_media_then_replies_and_status_then_health(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    order = ["health", "event", "status", "media", "event", "reply", "health", "media", "event"]
    ids = [box.put(kind, TOPIC + kind, payload(i)) for i, kind in enumerate(order)]  # type: ignore[arg-type]
    rows = box.peek(100)
    assert [row.kind for row in rows] == [
        "event",
        "event",
        "event",
        "media",
        "media",
        "status",
        "reply",
        "health",
        "health",
    ]
    events = [row.id for row in rows if row.kind == "event"]
    assert events == sorted(events) == [ids[1], ids[4], ids[8]]
    assert [row.id for row in box.peek(2)] == events[:2]
    assert [row.id for row in box.peek(2, exclude=set(events[:2]))] == [events[2], rows[3].id]


def test_rows_keep_what_was_put_and_survive_reopening(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    row_id = box.put("status", TOPIC + "status", b"\x00online\xff", qos=1, retain=True)
    box.mark_attempt(row_id)
    box.close()
    row = open_outbox(tmp_path).peek(1)[0]
    assert (row.id, row.kind, row.topic, row.payload, row.qos, row.retain, row.attempts) == (
        row_id,
        "status",
        TOPIC + "status",
        b"\x00online\xff",
        1,
        True,
        1,
    )


def test_delete_depth_and_age(tmp_path: Path) -> None:
    now = [1_000_000_000_000]
    box = Outbox(tmp_path / "o.sqlite", max_bytes=1_000_000, clock_ns=lambda: now[0])
    assert box.oldest_age_s() == 0.0
    first = box.put("event", TOPIC + "event", payload(1))
    now[0] += 2_500_000_000
    box.put("health", TOPIC + "health", payload(2), qos=0)
    now[0] += 500_000_000
    assert box.oldest_age_s() == pytest.approx(3.0)
    assert box.depth() == {"event": 1, "media": 0, "reply": 0, "status": 0, "health": 1}
    assert box.delete(first) is True
    assert box.delete(first) is False
    assert box.oldest_age_s() == pytest.approx(0.5)
    assert len(box) == 1


def test_the_bound_drops_health_first_oldest_first_then_status_then_media_never_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = open_outbox(tmp_path, max_bytes=100_000)
    row = 1000  # each message is ~1 kB with its topic
    for i in range(20):
        box.put("event", TOPIC + "event", payload(i, row))
        box.put("health", TOPIC + "health", payload(i, row))
        box.put("media", TOPIC + "media", payload(i, row))
        box.put("status", TOPIC + "status", payload(i, row), retain=True)
    assert box.depth() == {"event": 20, "media": 20, "reply": 0, "status": 20, "health": 20}
    with caplog.at_level(logging.WARNING):
        for i in range(20, 80):
            box.put("event", TOPIC + "event", payload(i, row))
    depth = box.depth()
    assert depth["event"] == 80
    assert depth["health"] == 0
    assert depth["status"] == 0
    assert 0 < depth["media"] < 20
    assert box.stored_bytes <= 100_000
    media = [int(r.payload.split(b":")[1].split(b"}")[0]) for r in box.peek(1000) if r.kind == "media"]
    assert media == list(range(20 - len(media), 20)), "the oldest media announcements go first"
    assert "dropped 1 health" in caplog.text
    assert "over its bound (100000 bytes / 200000 rows)" in caplog.text


def test_events_are_never_dropped_even_over_the_bound_and_that_is_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = open_outbox(tmp_path, max_bytes=5_000, max_rows=10)
    box.put("health", TOPIC + "health", payload(0, 500))
    with caplog.at_level(logging.WARNING):
        ids = [box.put("event", TOPIC + "event", payload(i, 500)) for i in range(30)]
    assert [row.id for row in box.peek(100)] == ids
    assert box.depth()["health"] == 0
    assert "OUTBOX FULL OF EVENTS" in caplog.text
    assert caplog.text.count("OUTBOX FULL OF EVENTS") == 1, "rate limited, not once per put"
    # a new health report cannot push an event out: it is the one dropped
    box.put("health", TOPIC + "health", payload(99, 500))
    assert box.depth() == {"event": 30, "media": 0, "reply": 0, "status": 0, "health": 0}


def test_replace_supersedes_unsent_rows_of_the_same_topic(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    box.put("status", TOPIC + "status", b"degraded", retain=True)
    box.put("event", TOPIC + "event", b"e")
    box.put("status", TOPIC + "status", b"online", retain=True, replace=True)
    assert [(r.kind, r.payload) for r in box.peek(10)] == [("event", b"e"), ("status", b"online")]


def test_bury_moves_a_refused_row_to_the_dead_table(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    row_id = box.put("event", "polewatch/v1/other/event", b"x")
    assert box.bury(row_id, "Not authorized") is True
    assert len(box) == 0
    dead = box.dead()
    assert [(row.id, row.topic, reason) for row, reason in dead] == [
        (row_id, "polewatch/v1/other/event", "Not authorized")
    ]
    assert box.bury(row_id, "again") is False


def corrupt_cases(path: Path) -> dict[str, bytes]:
    box = Outbox(path, max_bytes=10_000_000)
    for i in range(300):
        box.put("event", TOPIC + "event", payload(i, 300))
    box.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good = path.read_bytes()
    path.unlink()
    return {"garbage": bytes(range(256)) * 40, "truncated": good[: len(good) // 2], "cut-mid-page": good[:-100]}


@pytest.mark.parametrize("case", ["garbage", "truncated", "cut-mid-page"])
def test_a_corrupt_outbox_is_set_aside_loudly_and_a_fresh_one_works(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite"
    damaged = corrupt_cases(tmp_path / "template.sqlite")[case]
    path.write_bytes(damaged)
    path.with_name("outbox.sqlite-wal").write_bytes(b"stale wal")
    with caplog.at_level(logging.ERROR):
        box = Outbox(path, max_bytes=1_000_000)
    aside = sorted(tmp_path.glob("outbox.sqlite.corrupt-*"))
    assert [p.name.endswith("-wal") for p in aside] == [False, True]
    assert aside[0].read_bytes() == damaged, "the old file is kept byte for byte"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert str(aside[0]) in message
    assert "unsent events" in message
    assert len(box) == 0
    row_id = box.put("event", TOPIC + "event", b"new")
    assert [row.id for row in box.peek(5)] == [row_id]


def test_a_sound_outbox_is_not_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = open_outbox(tmp_path)
    box.put("event", TOPIC + "event", b"kept")
    box.close()
    with caplog.at_level(logging.ERROR):
        again = open_outbox(tmp_path)
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert [row.payload for row in again.peek(5)] == [b"kept"]
    assert "ERROR" not in caplog.text


def test_disk_full_raises_a_clear_error_and_keeps_the_stored_events(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=100_000_000, hard_limit_bytes=64 * 4096)
    stored: list[int] = []
    with pytest.raises(OutboxFullError) as caught:
        for i in range(10_000):
            stored.append(box.put("event", TOPIC + "event", payload(i, 2000)))
    error = caught.value
    assert isinstance(error, OSError)
    assert isinstance(error, PolewatchError)
    message = str(error)
    assert "database or disk is full" in message
    assert f"{len(stored)} events already stored are kept" in message
    assert "Free space on the data partition" in message
    assert len(stored) > 10
    assert [row.id for row in box.peek(len(stored) + 10)] == stored
    box.delete(stored[0])
    box.put("event", TOPIC + "event", payload(0, 1000)), "room again once something was sent"


def test_puts_and_deletes_from_two_threads(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    done = threading.Event()
    deleted: list[int] = []

    def publisher() -> None:
        while not done.is_set() or len(box):
            for row in box.peek(10):
                if box.delete(row.id):
                    deleted.append(row.id)

    thread = threading.Thread(target=publisher)
    thread.start()
    put = [box.put("event" if i % 3 else "health", TOPIC + "x", payload(i)) for i in range(600)]
    done.set()
    thread.join(timeout=30)
    assert sorted(deleted) == put
    assert len(box) == 0


def test_sequence_counters_survive_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=1 << 20)
    assert [box.next_seq("event"), box.next_seq("event"), box.next_seq("media")] == [1, 2, 1]
    box.close()
    again = Outbox(tmp_path / "o.sqlite", max_bytes=1 << 20)
    assert again.next_seq("event") == 3
    again.close()
