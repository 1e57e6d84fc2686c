"""Subprocesses (the unit and the peers), pinned, with their own CPU time and peak RSS from ``os.wait4``."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ProcResult:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float
    peak_rss_mb: float


def run_pinned(
    cmd: Sequence[str],
    cpu: int | None,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcResult:
    """Runs ``cmd`` pinned to core ``cpu`` (None: not pinned) from its start, so libraries that size thread
    pools at load time see one core; CPU time and peak RSS are that process's own (``os.wait4``). ``env`` is
    added to this process's environment."""

    def pin() -> None:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        full_env = {**os.environ, **env} if env else None
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=full_env, preexec_fn=pin)
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcResult(
            proc.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
        )
