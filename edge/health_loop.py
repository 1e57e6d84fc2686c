"""The periodic health report: every ``interval_s`` (or on request) one health message and, when it changed, the
retained status (``online``, or ``degraded`` with reasons)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge.health import HealthSnapshot, degraded_reasons

log = logging.getLogger(__name__)

FIRST_REPORT_S = 5.0
"""The first report comes this soon after start (seconds), so a technician sees the unit's state at once."""


class HealthLoop:
    def __init__(
        self,
        interval_s: float,
        *,
        collect: Callable[[], HealthSnapshot],
        publish: Callable[[HealthSnapshot], None],
        set_status: Callable[[str, list[str]], None],
        gps_expected: bool = False,
    ) -> None:
        self.interval_s = interval_s
        self._collect = collect
        self._publish = publish
        self._set_status = set_status
        self._gps_expected = gps_expected
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status: tuple[str, tuple[str, ...]] | None = None
        self.reports = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="health", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Report now (the ``health`` command)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def report_once(self) -> HealthSnapshot:
        snapshot = self._collect()
        self._publish(snapshot)
        reasons = degraded_reasons(snapshot, gps_expected=self._gps_expected)
        status = ("degraded" if reasons else "online", tuple(r.code for r in reasons))
        if status != self._last_status:
            if reasons:
                log.warning("unit degraded: %s", "; ".join(r.text for r in reasons))
            elif self._last_status is not None:
                log.info("unit healthy again")
            self._set_status(status[0], list(status[1]))
            self._last_status = status
        self.reports += 1
        return snapshot

    def _loop(self) -> None:
        wait = min(self.interval_s, FIRST_REPORT_S)
        while not self._stop.is_set():
            self._wake.wait(wait)
            wait = self.interval_s
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.report_once()
            except Exception:
                log.exception("health report failed; trying again in %.0f s", self.interval_s)
