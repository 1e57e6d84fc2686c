from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from edge.transport.commands import (
    ERROR_CODES,
    REPLY_SCHEMA,
    CommandDispatcher,
    CommandError,
    RateLimits,
    UnitActions,
    command_name,
    standard_dispatcher,
)
from edge.transport.topics import Topics

NOW_NS = 1_700_000_000_123_456_789


class FakeUnit:
    """Records what the commands asked of it."""

    def __init__(self) -> None:
        self.threshold = 0.5
        self.test_events: list[str] = []
        self.health_requests = 0
        self.self_tests = 0

    def self_test(self) -> Mapping[str, Any]:
        self.self_tests += 1
        return {"mic": "ok", "clock": "ntp"}

    def emit_test_event(self) -> str:
        event_id = f"00000000-0000-4000-8000-{len(self.test_events):012d}"
        self.test_events.append(event_id)
        return event_id

    def set_threshold(self, value: float) -> None:
        self.threshold = value

    def request_health(self) -> None:
        self.health_requests += 1

    def actions(self) -> UnitActions:
        return UnitActions(
            self_test=self.self_test,
            emit_test_event=self.emit_test_event,
            get_threshold=lambda: self.threshold,
            set_threshold=self.set_threshold,
            request_health=self.request_health,
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def unit() -> FakeUnit:
    return FakeUnit()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(unit: FakeUnit, clock: Clock) -> CommandDispatcher:
    return standard_dispatcher(unit.actions(), monotonic=clock, now_ns=lambda: NOW_NS)


def request(request_id: str | None = "r1", **args: Any) -> bytes:
    body: dict[str, Any] = {"args": args}
    if request_id is not None:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def assert_error(reply: dict[str, Any], code: str, *words: str) -> None:
    assert reply["ok"] is False and "result" not in reply
    assert code in ERROR_CODES and reply["error"].startswith(f"{code}: ")
    for word in words:
        assert word in reply["error"]
    json.dumps(reply, allow_nan=False)


def test_ping_reply_has_the_contract_fields(dispatcher: CommandDispatcher) -> None:
    reply = dispatcher.handle("ping", request("abc-1"))
    assert reply == {
        "schema": REPLY_SCHEMA,
        "request_id": "abc-1",
        "command": "ping",
        "ok": True,
        "result": {"pong": True},
        "ts": "2023-11-14T22:13:20.123456Z",
    }


def test_an_empty_payload_is_a_request_without_id_or_args(dispatcher: CommandDispatcher) -> None:
    reply = dispatcher.handle("ping", b"")
    assert reply["ok"] is True and reply["request_id"] == ""


def test_a_request_may_name_its_schema(dispatcher: CommandDispatcher) -> None:
    payload = b'{"schema": "polewatch/command/1", "request_id": "r2", "args": {}}'
    assert dispatcher.handle("ping", payload)["ok"] is True
    assert_error(dispatcher.handle("ping", b'{"schema": "polewatch/event/1", "args": {}}'), "bad-request")


def test_self_test_returns_the_findings(dispatcher: CommandDispatcher, unit: FakeUnit) -> None:
    reply = dispatcher.handle("self-test", request())
    assert reply["ok"] is True and reply["result"] == {"mic": "ok", "clock": "ntp"}
    assert unit.self_tests == 1


def test_test_event_goes_through_the_callback(dispatcher: CommandDispatcher, unit: FakeUnit) -> None:
    reply = dispatcher.handle("test-event", request())
    assert reply["ok"] is True
    assert reply["result"] == {"event_id": unit.test_events[0]}


def test_health_requests_a_message(dispatcher: CommandDispatcher, unit: FakeUnit) -> None:
    assert dispatcher.handle("health", request())["result"] == {"requested": True}
    assert unit.health_requests == 1


def test_set_threshold_returns_old_and_new(dispatcher: CommandDispatcher, unit: FakeUnit) -> None:
    reply = dispatcher.handle("set-threshold", request(threshold=0.8))
    assert reply["ok"] is True and reply["result"] == {"old": 0.5, "new": 0.8}
    assert unit.threshold == 0.8


@pytest.mark.parametrize("value", [0.01, 0.995, 1, -0.5, "0.7", None, True, float("nan")])
def test_set_threshold_is_bounded(dispatcher: CommandDispatcher, unit: FakeUnit, value: Any) -> None:
    payload = json.dumps({"request_id": "r", "args": {"threshold": value}}).encode()  # NaN: python's JSON extension
    reply = dispatcher.handle("set-threshold", payload)
    assert_error(reply, "bad-args", "threshold")
    assert unit.threshold == 0.5


def test_set_threshold_accepts_the_bounds(dispatcher: CommandDispatcher, clock: Clock) -> None:
    assert dispatcher.handle("set-threshold", request(threshold=0.05))["ok"] is True
    clock.now += 1
    assert dispatcher.handle("set-threshold", request(threshold=0.99))["ok"] is True


def test_malformed_json_is_an_error_reply(dispatcher: CommandDispatcher) -> None:
    assert_error(dispatcher.handle("ping", b"{not json"), "bad-json")
    assert_error(dispatcher.handle("ping", b"\xff\xfe"), "bad-json")


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",
        b'"ping"',
        b'{"request_id": 7}',
        b'{"request_id": "has space"}',
        b'{"request_id": "' + b"x" * 65 + b'"}',
        b'{"args": [1]}',
        b'{"threshold": 0.7}',
    ],
)
def test_malformed_requests_are_error_replies(dispatcher: CommandDispatcher, payload: bytes) -> None:
    assert_error(dispatcher.handle("set-threshold", payload), "bad-request")


def test_unknown_command_names_the_known_ones(dispatcher: CommandDispatcher) -> None:
    reply = dispatcher.handle("reboot", request("r9"))
    assert_error(reply, "unknown-command", "reboot", "self-test", "ping")
    assert reply["request_id"] == "r9" and reply["command"] == "reboot"


def test_a_topic_level_that_is_no_command_name_is_answered_as_invalid(dispatcher: CommandDispatcher) -> None:
    reply = dispatcher.handle("Reboot Now", request("r9"))
    assert_error(reply, "unknown-command", "Reboot Now")
    assert reply["command"] == "invalid"


def test_the_request_id_is_echoed_even_when_the_request_is_refused(dispatcher: CommandDispatcher) -> None:
    reply = dispatcher.handle("ping", b'{"request_id": "r10", "args": [1]}')
    assert_error(reply, "bad-request")
    assert reply["request_id"] == "r10"
    assert dispatcher.handle("ping", b"{oops")["request_id"] == ""


def test_unexpected_args_are_rejected(dispatcher: CommandDispatcher, unit: FakeUnit) -> None:
    assert_error(dispatcher.handle("self-test", request(force=True)), "bad-args", "force", "no arguments")
    assert unit.self_tests == 0


def test_a_failing_handler_is_an_error_reply(unit: FakeUnit, clock: Clock) -> None:
    def broken() -> Mapping[str, Any]:
        raise RuntimeError("camera driver crashed")

    actions = unit.actions()
    dispatcher = standard_dispatcher(
        UnitActions(
            broken, actions.emit_test_event, actions.get_threshold, actions.set_threshold, actions.request_health
        ),
        monotonic=clock,
    )
    assert_error(dispatcher.handle("self-test", request()), "failed", "RuntimeError", "camera driver crashed")


def test_a_result_that_is_not_json_is_an_error_reply(clock: Clock) -> None:
    dispatcher = CommandDispatcher(monotonic=clock)
    dispatcher.register("odd", lambda args: {"value": float("inf")})
    assert_error(dispatcher.handle("odd", b""), "failed")


def test_rate_limit(dispatcher: CommandDispatcher, unit: FakeUnit, clock: Clock) -> None:
    assert dispatcher.handle("self-test", request("a"))["ok"] is True
    clock.now += 9.5
    reply = dispatcher.handle("self-test", request("b"))
    assert_error(reply, "rate-limited", "once per 10 s", "0.5 s")
    assert unit.self_tests == 1
    assert dispatcher.handle("ping", request("c"))["ok"] is True  # limits are per command
    clock.now += 0.5
    assert dispatcher.handle("self-test", request("d"))["ok"] is True
    assert unit.self_tests == 2


def test_rate_limits_are_configurable(unit: FakeUnit, clock: Clock) -> None:
    dispatcher = standard_dispatcher(unit.actions(), limits=RateLimits(ping=60.0), monotonic=clock)
    assert dispatcher.handle("ping", b"")["ok"] is True
    assert_error(dispatcher.handle("ping", b""), "rate-limited")


def test_every_command_is_logged_once_with_its_request_id(
    dispatcher: CommandDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge.transport.commands"):
        dispatcher.handle("ping", request("req-ok"))
        dispatcher.handle("nope", request("req-bad"))
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.transport.commands"]
    assert len(lines) == 2
    assert "ping" in lines[0] and "req-ok" in lines[0] and "ok" in lines[0]
    assert "nope" in lines[1] and "req-bad" in lines[1] and "unknown-command" in lines[1]
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_register_rejects_bad_names_and_duplicates() -> None:
    dispatcher = CommandDispatcher()
    dispatcher.register("capture-clip", lambda args: {})
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register("capture-clip", lambda args: {})
    with pytest.raises(ValueError, match="must match"):
        dispatcher.register("Capture Clip", lambda args: {})
    with pytest.raises(ValueError, match="min_interval_s"):
        dispatcher.register("x", lambda args: {}, min_interval_s=-1)


def test_a_handler_may_refuse_with_its_own_code() -> None:
    def busy(args: Mapping[str, Any]) -> Mapping[str, Any]:
        raise CommandError("a clip is already being captured", "failed")

    dispatcher = CommandDispatcher()
    dispatcher.register("capture-clip", busy)
    assert_error(dispatcher.handle("capture-clip", b""), "failed", "already")


def test_command_name_from_topic() -> None:
    topics = Topics("pole-17")
    assert command_name(topics.command("self-test")) == "self-test"
    assert command_name(topics.reply("self-test")) is None
    assert command_name(topics.event) is None
    assert command_name("cmd/ping") is None
