"""Commands addressed to the unit on ``{prefix}/{unit}/cmd/{name}``, answered on ``.../cmd/{name}/reply``.

A request payload is a JSON object ``{"request_id": "...", "args": {...}}`` (plus an optional ``schema``); the unit
is lenient and also takes a request without ``request_id`` or ``args``, or an empty payload.
:meth:`CommandDispatcher.handle` never raises: malformed JSON, an unknown command, bad arguments, a rate limit or a
failing handler all become an error reply whose ``error`` starts with a stable code (:data:`ERROR_CODES`)::

    {"schema": "polewatch/reply/1", "request_id": "r1", "command": "set-threshold", "ok": false,
     "error": "bad-args: threshold must be between 0.05 and 0.99, got 1.5", "ts": "2025-03-01T12:00:00.123456Z"}

A success carries ``"ok": true, "result": {...}`` instead of ``error``; ``request_id`` is ``""`` when the request
had none or could not be read, and ``command`` is ``invalid`` when the topic level is no valid command name.

Every command is logged at INFO in one line with its request id and outcome. Handlers run on the caller's thread
(the MQTT network thread): they must be quick, and hand anything slow to the unit.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.clock import iso_utc
from edge.errors import PolewatchError

log = logging.getLogger(__name__)

REPLY_SCHEMA = "polewatch/reply/1"
COMMAND_SCHEMA = re.compile(r"polewatch/command/1(\.[1-9][0-9]*)?")
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REQUEST_KEYS = frozenset({"schema", "request_id", "args"})
INVALID_COMMAND = "invalid"
"""``command`` of a reply to a topic level that is no valid command name."""

THRESHOLD_MIN = 0.05
THRESHOLD_MAX = 0.99

ERROR_CODES = ("bad-json", "bad-request", "unknown-command", "bad-args", "rate-limited", "failed")
"""Every ``error.code`` a reply can carry."""

Args = Mapping[str, Any]
Handler = Callable[[Args], Mapping[str, Any]]
"""Takes the request's ``args``, returns the reply's ``result``; raises :class:`CommandError` for bad arguments."""


class CommandError(PolewatchError, ValueError):
    """A command cannot be carried out as asked; becomes an error reply with ``code``."""

    def __init__(self, message: str, code: str = "bad-args") -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    min_interval_s: float = 0.0
    """At most one call per this many seconds; later calls get a ``rate-limited`` reply."""
    description: str = ""


def command_name(topic: str) -> str | None:
    """The ``{name}`` of a ``.../cmd/{name}`` topic, or None when the topic is no command (e.g. a reply)."""
    head, sep, name = topic.rpartition("/cmd/")
    return name if sep and head and COMMAND_NAME.fullmatch(name) else None


def expect_args(args: Args, allowed: frozenset[str] = frozenset()) -> None:
    """Reject arguments a command does not take, naming what it does take."""
    unexpected = sorted(set(args) - allowed)
    if unexpected:
        takes = ", ".join(sorted(allowed)) if allowed else "no arguments"
        raise CommandError(f"unexpected argument(s) {', '.join(unexpected)}; this command takes {takes}")


class CommandDispatcher:
    """A registry of named commands; :meth:`handle` turns a request into a reply dict."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._commands: dict[str, Command] = {}
        self._last_run: dict[str, float] = {}
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._now_ns = now_ns

    def register(self, name: str, handler: Handler, *, min_interval_s: float = 0.0, description: str = "") -> None:
        if not COMMAND_NAME.fullmatch(name):
            raise ValueError(f"command name {name!r} must match {COMMAND_NAME.pattern}")
        if name in self._commands:
            raise ValueError(f"command {name!r} is already registered")
        if min_interval_s < 0 or not math.isfinite(min_interval_s):
            raise ValueError(f"min_interval_s of {name!r} must be a finite number ≥ 0, got {min_interval_s}")
        self._commands[name] = Command(name, handler, min_interval_s, description)

    @property
    def names(self) -> list[str]:
        return sorted(self._commands)

    def handle(self, topic_name: str, payload: bytes) -> dict[str, Any]:
        """Run command ``topic_name`` (the ``{name}`` of its topic) with ``payload``; always returns a reply."""
        started = self._monotonic()
        request_id = ""
        try:
            request = _load_request(payload)
            request_id = _request_id(request)  # known from here on, so even a refusal echoes it
            args = _request_args(request)
            command = self._commands.get(topic_name)
            if command is None:
                known = ", ".join(self.names) or "none"
                raise CommandError(f"unknown command {topic_name[:64]!r}; this unit knows {known}", "unknown-command")
            self._check_rate(command, started)
            result = dict(command.handler(args))
            json.dumps(result, allow_nan=False)  # the reply must serialise: fail here, not in the publisher
        except CommandError as exc:
            return self._reply(topic_name, request_id, started, error=(exc.code, str(exc)))
        except Exception as exc:
            log.debug("command %s request_id=%s raised", topic_name, request_id, exc_info=True)
            return self._reply(topic_name, request_id, started, error=("failed", f"{type(exc).__name__}: {exc}"))
        return self._reply(topic_name, request_id, started, result=result)

    def _check_rate(self, command: Command, now: float) -> None:
        with self._lock:
            last = self._last_run.get(command.name)
            if last is not None and now - last < command.min_interval_s:
                wait = command.min_interval_s - (now - last)
                raise CommandError(
                    f"{command.name} runs at most once per {command.min_interval_s:g} s; try again in {wait:.1f} s",
                    "rate-limited",
                )
            self._last_run[command.name] = now

    def _reply(
        self,
        name: str,
        request_id: str,
        started: float,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        elapsed_ms = (self._monotonic() - started) * 1000.0
        command = name if COMMAND_NAME.fullmatch(name) else INVALID_COMMAND
        reply: dict[str, Any] = {"schema": REPLY_SCHEMA, "request_id": request_id, "command": command}
        if error is None:
            log.info("command %s request_id=%s: ok in %.1f ms", name, request_id, elapsed_ms)
            reply.update(ok=True, result=result or {})
        else:
            code, message = error
            log.info("command %.64r request_id=%s: error %s: %s", name, request_id, code, message)
            reply.update(ok=False, error=f"{code}: {message}"[:1024])
        reply["ts"] = iso_utc(self._now_ns())
        return reply


def _load_request(payload: bytes) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        request = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"payload is not JSON: {exc}", "bad-json") from exc
    if not isinstance(request, dict):
        raise CommandError('payload must be a JSON object {"request_id": ..., "args": {...}}', "bad-request")
    return request


def _request_id(request: Mapping[str, Any]) -> str:
    request_id = request.get("request_id", "")
    if not isinstance(request_id, str) or not (request_id == "" or REQUEST_ID.fullmatch(request_id)):
        raise CommandError("request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -", "bad-request")
    return request_id


def _request_args(request: Mapping[str, Any]) -> Args:
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise CommandError(
            f"unknown field(s) {', '.join(unknown)}; a request has request_id and args (put arguments in args)",
            "bad-request",
        )
    version = request.get("schema")
    if version is not None and not (isinstance(version, str) and COMMAND_SCHEMA.fullmatch(version)):
        raise CommandError(f"schema {version!r} is not polewatch/command/1", "bad-request")
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("args must be a JSON object", "bad-request")
    return args


# -- the unit's standard commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitActions:
    """What the standard commands do to the unit; the composition root supplies these."""

    self_test: Callable[[], Mapping[str, Any]]
    """Check the unit's parts now; returns what was found (e.g. mic level, clock, disk)."""
    emit_test_event: Callable[[], str]
    """Send a ``type: "test"`` event through the normal event path; returns its ``event_id``."""
    get_threshold: Callable[[], float]
    set_threshold: Callable[[float], None]
    request_health: Callable[[], None]
    """Publish a health message as soon as possible."""


@dataclass(frozen=True)
class RateLimits:
    """Minimum seconds between two runs of each standard command."""

    self_test: float = 10.0
    test_event: float = 10.0
    set_threshold: float = 1.0
    health: float = 5.0
    ping: float = 0.0


def parse_threshold(args: Args) -> float:
    expect_args(args, frozenset({"threshold"}))
    value = args.get("threshold")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandError(f"threshold must be a number, got {value!r}")
    if not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
        raise CommandError(f"threshold must be between {THRESHOLD_MIN} and {THRESHOLD_MAX}, got {value}")
    return float(value)


def standard_dispatcher(
    actions: UnitActions,
    *,
    limits: RateLimits | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    now_ns: Callable[[], int] = time.time_ns,
) -> CommandDispatcher:
    """A dispatcher with ``self-test``, ``test-event``, ``set-threshold``, ``health`` and ``ping``."""
    lim = limits or RateLimits()
    dispatcher = CommandDispatcher(monotonic=monotonic, now_ns=now_ns)

    def self_test(args: Args) -> Mapping[str, Any]:
        expect_args(args)
        return actions.self_test()

    def test_event(args: Args) -> Mapping[str, Any]:
        expect_args(args)
        return {"event_id": actions.emit_test_event()}

    def set_threshold(args: Args) -> Mapping[str, Any]:
        new = parse_threshold(args)
        old = actions.get_threshold()
        actions.set_threshold(new)
        log.info("detection threshold changed from %.3f to %.3f by command", old, new)
        return {"old": old, "new": new}

    def health(args: Args) -> Mapping[str, Any]:
        expect_args(args)
        actions.request_health()
        return {"requested": True}

    def ping(args: Args) -> Mapping[str, Any]:
        expect_args(args)
        return {"pong": True}

    dispatcher.register("self-test", self_test, min_interval_s=lim.self_test, description="check the unit's parts")
    dispatcher.register("test-event", test_event, min_interval_s=lim.test_event, description="send a test event")
    dispatcher.register(
        "set-threshold",
        set_threshold,
        min_interval_s=lim.set_threshold,
        description=f"set the detection threshold ({THRESHOLD_MIN}..{THRESHOLD_MAX})",
    )
    dispatcher.register("health", health, min_interval_s=lim.health, description="publish health now")
    dispatcher.register("ping", ping, min_interval_s=lim.ping, description="answer pong")
    return dispatcher
