"""The MQTT contract as files: one JSON Schema (2020-12) per message kind in ``edge/transport/schemas``.

:func:`validate` checks a payload against the schema of its kind and raises :class:`edge.errors.MessageError`
naming the kind, the JSON path and the problem. A payload that declares a later minor version of the same major
(``polewatch/event/1.3`` read by code that knows ``polewatch/event/1``) is checked with unknown fields allowed:
minor versions only add fields (docs/mqtt.md, "Versioning").
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from edge.clock import iso_utc
from edge.errors import MessageError

MAJOR: Final = 1
"""Major version of the contract this code speaks; the topic prefix ``polewatch/v1`` goes with it."""

KINDS: Final = ("event", "media", "status", "health", "command", "reply", "incident", "reclassification")
SIGNED_KINDS: Final = frozenset({"event", "media", "reclassification"})

EVENT_SCHEMA: Final = "polewatch/event/1"
MEDIA_SCHEMA: Final = "polewatch/media/1"
STATUS_SCHEMA: Final = "polewatch/status/1"
HEALTH_SCHEMA: Final = "polewatch/health/1"
COMMAND_SCHEMA: Final = "polewatch/command/1"
REPLY_SCHEMA: Final = "polewatch/reply/1"
INCIDENT_SCHEMA: Final = "polewatch/incident/1"
RECLASSIFICATION_SCHEMA: Final = "polewatch/reclassification/1"

SCHEMA_VERSION: Final[Mapping[str, str]] = {kind: f"polewatch/{kind}/{MAJOR}" for kind in KINDS}
"""``kind`` → the version string its builders write into the ``schema`` field."""

_VERSION = re.compile(r"polewatch/([a-z]+)/([0-9]+)(?:\.([0-9]+))?")


def load_schema(kind: str) -> dict[str, Any]:
    """The schema document of ``kind`` (a fresh copy)."""
    return copy.deepcopy(_schema(kind))


def kind_of(payload: Mapping[str, Any]) -> str:
    """The message kind a payload declares in its ``schema`` field, e.g. ``"event"``."""
    declared = payload.get("schema")
    match = _VERSION.fullmatch(declared) if isinstance(declared, str) else None
    if match is None or match.group(1) not in KINDS:
        raise MessageError("unknown", "$.schema", f"{declared!r} is not a polewatch contract version")
    return match.group(1)


def validate(kind: str, payload: Any, *, signed: bool = True) -> None:
    """Check ``payload`` against the ``kind`` schema; raise :class:`MessageError` on the first (best) problem.

    ``signed=False`` accepts a message of a signed kind before its ``signature`` is added (what the builders return).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; one of {', '.join(KINDS)}")
    closed = True
    if isinstance(payload, Mapping) and isinstance(payload.get("schema"), str):
        match = _VERSION.fullmatch(payload["schema"])
        if match is not None and match.group(1) != kind:
            raise MessageError(kind, "$.schema", f"{payload['schema']!r} declares a {match.group(1)} message")
        if match is not None:
            if int(match.group(2)) != MAJOR:
                problem = f"{payload['schema']!r} is contract version {match.group(2)}; this code reads {MAJOR}"
                raise MessageError(kind, "$.schema", problem)
            closed = match.group(3) is None
    error = best_match(_validator(kind, closed, signed).iter_errors(payload))
    if error is not None:
        raise MessageError(kind, _json_path(error), _problem(error))
    if kind == "event":
        _check_event(payload)


def _check_event(payload: Mapping[str, Any]) -> None:
    """What the schema cannot say: fields that must agree with each other."""
    impulses = payload["impulses"]
    if payload["rounds"] != len(impulses):
        raise MessageError("event", "$.rounds", f"{payload['rounds']} rounds but {len(impulses)} impulses")
    if impulses[0]["offset_ms"] != 0:
        raise MessageError("event", "$.impulses[0].offset_ms", "the first impulse is the onset: offset must be 0")
    for i in range(1, len(impulses)):
        if impulses[i]["offset_ms"] < impulses[i - 1]["offset_ms"]:
            raise MessageError("event", f"$.impulses[{i}].offset_ms", "impulses must be in onset order")
    if max(i["score"] for i in impulses) != payload["score"]:
        raise MessageError("event", "$.score", "must be the highest impulse score")
    expected = iso_utc(payload["onset_ns"])
    if payload["onset_utc"] != expected:
        raise MessageError("event", "$.onset_utc", f"{payload['onset_utc']!r} does not match onset_ns ({expected})")


@cache
def _schema(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; one of {', '.join(KINDS)}")
    text = files("edge.transport").joinpath("schemas", f"{kind}.schema.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _validator(kind: str, closed: bool, signed: bool) -> Draft202012Validator:
    document = copy.deepcopy(_schema(kind))
    if not closed:
        _opened(document)
    if not signed and "signature" in document.get("required", ()):
        document["required"] = [name for name in document["required"] if name != "signature"]
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def _opened(node: Any) -> Any:
    """The schema with every ``additionalProperties: false`` lifted (for later minor versions)."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in node.values():
            _opened(value)
    elif isinstance(node, list):
        for value in node:
            _opened(value)
    return node


def _json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problem(error: ValidationError) -> str:
    message = error.message
    if error.validator == "additionalProperties":
        message += " (a typo, or a field of a later contract version?)"
    elif error.validator == "oneOf" and all(set(alt) == {"required"} for alt in _alternatives(error)):
        names = [name for alt in _alternatives(error) for name in alt["required"]]
        message = f"needs exactly one of {', '.join(names)}"
    return message if len(message) <= 200 else message[:197] + "..."


def _alternatives(error: ValidationError) -> list[dict[str, Any]]:
    value = error.validator_value
    return list(value) if isinstance(value, list) else []
