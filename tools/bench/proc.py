"""Subprocesses (the unit and the peers), pinned, with their own CPU time and peak RSS from ``os.wait4``.

Each measured command is started by a small launcher process that forks and execs it and reports what ``wait4``
says. Started straight from the bench, the command would inherit in its ``ru_maxrss`` the bench's own resident set
at the fork (Linux carries the peak across exec), and the bench holds every stream in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_LAUNCHER = """
import json, os, sys
cmd, cpu, report = json.loads(sys.argv[1])
if cpu is not None and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {cpu})
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as fh:
    json.dump([usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0], fh)
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Pins itself, runs the command as its child, writes [cpu_s, peak_rss_mb] to a file and exits with its code."""


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

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.TemporaryDirectory() as tmp:
        full_env = {**os.environ, **env} if env else None
        report = Path(tmp) / "usage.json"
        launcher = [sys.executable, "-c", _LAUNCHER, json.dumps([list(cmd), cpu, str(report)])]
        # a new session, so that a timeout kills the measured command with its launcher
        proc = subprocess.Popen(launcher, stdout=out, stderr=err, cwd=cwd, env=full_env, start_new_session=True)
        timer = threading.Timer(timeout_s, lambda: os.killpg(proc.pid, 9))
        timer.start()
        try:
            returncode = proc.wait()
        finally:
            timer.cancel()
        cpu_s, peak_rss_mb = json.loads(report.read_text()) if report.is_file() else (float("nan"), float("nan"))
        out.seek(0)
        err.seek(0)
        return ProcResult(returncode, out.read(), err.read(), cpu_s, peak_rss_mb)
