"""The on-disk outbox: every message waits here (SQLite on the data partition) until the broker acknowledged it.

Rows drain in (priority, id) order: events, then media announcements, then replies and status, then health, each
kind in the order it was put. When the store grows past its bound, health goes first (oldest first), then replies
and status, then media announcements; events are never dropped, not even then (a loud warning says so).

An event's :meth:`Outbox.put` returns only once the row is durable (``synchronous=FULL``); losing a later delete
in a power cut only means the message is sent again, which the at-least-once contract allows.

One connection serves every thread behind a lock: the detector puts while the publisher peeks and deletes.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from edge.errors import OutboxFullError

log = logging.getLogger(__name__)

Kind = Literal["event", "media", "reply", "status", "health"]
KINDS: tuple[Kind, ...] = get_args(Kind)
PRIORITY: dict[str, int] = {"event": 0, "media": 1, "reply": 2, "status": 2, "health": 3}
"""Drain order; the bound drops the highest number first and never priority 0."""

DEFAULT_MAX_ROWS = 200_000
_OVERFLOW_LOG_INTERVAL_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    priority INT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INT NOT NULL,
    retain INT NOT NULL,
    created_ns INT NOT NULL,
    attempts INT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (priority, id);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    priority INT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INT NOT NULL,
    retain INT NOT NULL,
    created_ns INT NOT NULL,
    attempts INT NOT NULL,
    reason TEXT NOT NULL,
    dead_ns INT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: Kind
    priority: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_ns: int
    """Wall clock (UTC ns) when the message was put."""
    attempts: int
    """How often it was handed to the broker before (0 = never)."""


class Outbox:
    """A bounded, crash-safe queue of MQTT messages (see the module docstring for the drop policy)."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        max_rows: int = DEFAULT_MAX_ROWS,
        hard_limit_bytes: int | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """Open (or create) the outbox at ``path``; a corrupt file is set aside, never silently dropped.

        ``max_bytes``/``max_rows`` bound the stored messages (payload + topic bytes) through the drop policy.
        ``hard_limit_bytes`` caps the SQLite file itself (``PRAGMA max_page_count``): a put beyond it fails with
        :class:`OutboxFullError`, exactly as when the partition is full. ``None`` = the partition is the limit.
        """
        if max_bytes <= 0 or max_rows <= 0:
            raise ValueError("outbox max_bytes and max_rows must be positive")
        self.path = path
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._last_overflow_log = -_OVERFLOW_LOG_INTERVAL_S
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open_checked()
        if hard_limit_bytes is not None:
            page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            self._conn.execute(f"PRAGMA max_page_count = {max(1, hard_limit_bytes // page_size)}")
        self._rows = self._bytes = 0
        self._rollback_and_recount()
        if self._rows:
            log.info("outbox %s holds %d unsent messages from before; they are sent first", path, self._rows)

    # -- opening -----------------------------------------------------------------------------------------------
    def _open_checked(self) -> sqlite3.Connection:
        if self.path.exists():
            problem = self._integrity_problem()
            if problem:
                self._set_aside(problem)
        conn = self._connect()
        conn.executescript(_SCHEMA)
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _integrity_problem(self) -> str | None:
        """Why the existing file cannot be trusted, or None when it is a sound outbox."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            return str(exc)
        try:
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            if self.path.stat().st_size % page_size:
                return f"truncated: size is not a whole number of {page_size}-byte pages"
            verdict = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
            if verdict != ["ok"]:
                return "quick_check: " + "; ".join(verdict[:3])
            has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
            if has_table:
                conn.execute("SELECT count(*), sum(length(payload)) FROM outbox").fetchone()  # reads every page
        except sqlite3.DatabaseError as exc:
            return str(exc)
        except OSError as exc:
            return f"cannot read: {exc}"
        finally:
            conn.close()
        return None

    def _set_aside(self, problem: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                source.rename(target.with_name(target.name + suffix))
        log.error(
            "outbox %s is corrupt (%s); moved it to %s and started a fresh outbox. The old file may still hold "
            "unsent events: keep it and recover them with sqlite3 before deleting it",
            self.path,
            problem,
            target,
        )

    # -- writing -----------------------------------------------------------------------------------------------
    def put(
        self, kind: Kind, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, replace: bool = False
    ) -> int:
        """Store a message and return its row id; for an event, only once it is on disk.

        ``replace``: first remove unsent rows of the same kind and topic (a newer retained status supersedes them).
        Raises :class:`OutboxFullError` when the disk (or the hard limit) is full; stored messages stay.
        """
        if kind not in PRIORITY:
            raise ValueError(f"outbox kind {kind!r} must be one of {', '.join(KINDS)}")
        size = len(payload) + len(topic.encode())
        with self._lock:
            self._set_durable(kind == "event")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if replace:
                    self._remove_superseded(kind, topic)
                cursor = self._conn.execute(
                    "INSERT INTO outbox (kind, priority, topic, payload, qos, retain, created_ns, attempts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                    (kind, PRIORITY[kind], topic, payload, qos, int(retain), self._clock_ns()),
                )
                row_id = int(cursor.lastrowid or 0)
                self._rows += 1
                self._bytes += size
                dropped = self._enforce_bound()
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback_and_recount()
                if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                    raise self._full_error(kind, exc) from exc
                raise
        if dropped:
            log.warning(
                "outbox %s over its bound (%d bytes / %d rows): dropped %s",
                self.path,
                self.max_bytes,
                self.max_rows,
                ", ".join(f"{count} {name}" for name, count in dropped.items()),
            )
        return row_id

    def next_seq(self, name: str) -> int:
        """The next value (from 1) of a durable per-unit counter, e.g. the ``seq`` of events for gap detection."""
        with self._lock:
            self._set_durable(True)
            try:
                row = self._conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                    (name,),
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if "full" in str(exc):
                    raise self._full_error("counter", exc) from exc
                raise
        return int(row[0])

    def _remove_superseded(self, kind: str, topic: str) -> None:
        for row_id, size in self._conn.execute(
            "SELECT id, length(payload) + length(topic) FROM outbox WHERE kind = ? AND topic = ?", (kind, topic)
        ).fetchall():
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            self._rows -= 1
            self._bytes -= int(size)

    def _set_durable(self, durable: bool) -> None:
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")

    def _enforce_bound(self) -> dict[str, int]:
        """Drop the lowest-value rows, oldest first, until under the bound; events never. Returns counts dropped."""
        dropped: dict[str, int] = {}
        for priority in sorted(set(PRIORITY.values()), reverse=True):
            if not self._over_bound() or priority == PRIORITY["event"]:
                break
            for row_id, kind, size in self._conn.execute(
                "SELECT id, kind, length(payload) + length(topic) FROM outbox WHERE priority = ? ORDER BY id",
                (priority,),
            ).fetchall():
                if not self._over_bound():
                    break
                self._conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self._rows -= 1
                self._bytes -= int(size)
                dropped[kind] = dropped.get(kind, 0) + 1
        if self._over_bound():
            now = time.monotonic()
            if now - self._last_overflow_log >= _OVERFLOW_LOG_INTERVAL_S:
                self._last_overflow_log = now
                log.warning(
                    "OUTBOX FULL OF EVENTS: %s holds %d messages (%d bytes), over its bound of %d bytes / %d rows; "
                    "events are never dropped, so it keeps growing. Check the broker connection",
                    self.path,
                    self._rows,
                    self._bytes,
                    self.max_bytes,
                    self.max_rows,
                )
        return dropped

    def _over_bound(self) -> bool:
        return self._bytes > self.max_bytes or self._rows > self.max_rows

    def _rollback_and_recount(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction was open
            self._conn.execute("ROLLBACK")
        rows, size = self._conn.execute(
            "SELECT count(*), coalesce(sum(length(payload) + length(topic)), 0) FROM outbox"
        ).fetchone()
        self._rows, self._bytes = int(rows), int(size)

    def _full_error(self, kind: str, exc: sqlite3.Error) -> OutboxFullError:
        events = self._conn.execute("SELECT count(*) FROM outbox WHERE kind = 'event'").fetchone()[0]
        return OutboxFullError(
            f"outbox {self.path}: cannot store this {kind} message ({exc}). The {events} events already stored "
            f"are kept and will be sent when the broker is reachable. Free space on the data partition "
            f"({self.path.parent}: old media, logs) and check the broker connection"
        )

    def delete(self, row_id: int) -> bool:
        """Remove a row the broker acknowledged; False when it was already gone (e.g. dropped by the bound)."""
        with self._lock:
            self._set_durable(False)
            row = self._conn.execute(
                "SELECT length(payload) + length(topic) FROM outbox WHERE id = ?", (row_id,)
            ).fetchone()
            if row is None:
                return False
            self._conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            self._rows -= 1
            self._bytes -= int(row[0])
            return True

    def mark_attempt(self, row_id: int) -> None:
        """Count one more hand-over of the row to the broker."""
        with self._lock:
            self._set_durable(False)
            self._conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def bury(self, row_id: int, reason: str) -> bool:
        """Move a row the broker refused for good into the ``dead`` table: kept for a technician, not retried."""
        with self._lock:
            self._set_durable(True)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT length(payload) + length(topic) FROM outbox WHERE id = ?", (row_id,)
                ).fetchone()
                if row is None:
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "INSERT INTO dead (id, kind, priority, topic, payload, qos, retain, created_ns, attempts, reason, "
                    "dead_ns) SELECT id, kind, priority, topic, payload, qos, retain, created_ns, attempts, ?, ? "
                    "FROM outbox WHERE id = ?",
                    (reason, self._clock_ns(), row_id),
                )
                self._conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback_and_recount()
                raise
            self._rows -= 1
            self._bytes -= int(row[0])
            return True

    # -- reading -----------------------------------------------------------------------------------------------
    def peek(self, limit: int, *, exclude: Collection[int] = ()) -> list[OutboxRow]:
        """Up to ``limit`` rows in drain order, skipping the ids in ``exclude`` (e.g. those in flight)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, kind, priority, topic, payload, qos, retain, created_ns, attempts FROM outbox "
                "ORDER BY priority, id LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
        wanted = [row for row in rows if row[0] not in exclude][:limit]
        return [
            OutboxRow(row_id, kind, priority, topic, bytes(payload), qos, bool(retain), created_ns, attempts)
            for row_id, kind, priority, topic, payload, qos, retain, created_ns, attempts in wanted
        ]

    def depth(self) -> dict[str, int]:
        """Stored messages per kind (every kind present, 0 when none)."""
        with self._lock:
            counts = dict(self._conn.execute("SELECT kind, count(*) FROM outbox GROUP BY kind").fetchall())
        return {kind: int(counts.get(kind, 0)) for kind in KINDS}

    def __len__(self) -> int:
        with self._lock:
            return self._rows

    @property
    def stored_bytes(self) -> int:
        """Payload plus topic bytes of the stored messages (what the bound counts)."""
        with self._lock:
            return self._bytes

    def oldest_age_s(self) -> float:
        """Age of the oldest stored message in seconds (0.0 when empty)."""
        with self._lock:
            oldest = self._conn.execute("SELECT min(created_ns) FROM outbox").fetchone()[0]
        return 0.0 if oldest is None else max(0.0, (self._clock_ns() - int(oldest)) / 1e9)

    def dead(self) -> list[tuple[OutboxRow, str]]:
        """Rows the broker refused for good, with the reason, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, kind, priority, topic, payload, qos, retain, created_ns, attempts, reason FROM dead "
                "ORDER BY id"
            ).fetchall()
        return [
            (OutboxRow(row_id, kind, priority, topic, bytes(payload), qos, bool(retain), created_ns, attempts), reason)
            for row_id, kind, priority, topic, payload, qos, retain, created_ns, attempts, reason in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
