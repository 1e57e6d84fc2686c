"""Pure builders of the MQTT payloads of contract v1 (DESIGN.md section 4, docs/mqtt.md).

Builders return plain dicts of JSON types, without a signature; sign events, media and reclassifications with
:func:`edge.transport.signing.sign`. They check their inputs (finite numbers, known enum values) so a unit cannot
publish what the schema would refuse; every output validates against ``edge/transport/schemas``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from edge.clock import OnsetTime, iso_utc
from edge.detect.bursts import Detection, Phase
from edge.detect.runtime import ModelInfo
from edge.transport.schema import SCHEMA_VERSION
from edge.transport.topics import UNIT_ID

__all__ = [
    "MediaKind",
    "MediaState",
    "OnsetTime",
    "Position",
    "build_event",
    "build_incident",
    "build_media",
    "build_reclassification",
    "build_reply",
    "build_status",
    "iso_utc",
    "model_fields",
]

TimeSource = Literal["gps-pps", "gps", "ntp", "none"]
PositionSource = Literal["gps", "surveyed", "none"]
EventType = Literal["gunshot", "test"]
MediaKind = Literal["clip", "audio"]
MediaState = Literal["ready", "failed", "purged"]
UnitState = Literal["online", "offline", "degraded"]
NewType = Literal["gunshot", "test", "not-gunshot"]

OFFSET_DECIMALS: Final = 3
"""Impulse offsets are rounded to the microsecond."""
SCORE_DECIMALS: Final = 4


@dataclass(frozen=True)
class Position:
    """Where the unit is: a surveyed position from config, a GPS fix, or unknown (``Position()``)."""

    lat: float | None = None
    """Latitude, decimal degrees WGS 84."""
    lon: float | None = None
    """Longitude, decimal degrees WGS 84."""
    alt_m: float | None = None
    """Altitude above the WGS 84 ellipsoid, metres."""
    accuracy_m: float | None = None
    """Horizontal accuracy (1 sigma), metres."""
    source: PositionSource = "none"

    def __post_init__(self) -> None:
        _one_of("position source", self.source, PositionSource)
        values = (self.lat, self.lon, self.alt_m, self.accuracy_m)
        if self.source == "none":
            if any(v is not None for v in values):
                raise ValueError("an unknown position (source 'none') has no coordinates")
            return
        if self.lat is None or self.lon is None:
            raise ValueError(f"a {self.source} position needs lat and lon")
        _finite("lat", self.lat, -90.0, 90.0)
        _finite("lon", self.lon, -180.0, 180.0)
        _finite("alt_m", self.alt_m)
        _finite("accuracy_m", self.accuracy_m, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "lat": _float_or_none(self.lat),
            "lon": _float_or_none(self.lon),
            "alt_m": _float_or_none(self.alt_m),
            "accuracy_m": _float_or_none(self.accuracy_m),
            "source": self.source,
        }


def model_fields(model: ModelInfo | Mapping[str, Any]) -> dict[str, str]:
    """``{name, version, sha256}`` of a model, from its :class:`ModelInfo` or such a mapping."""
    if isinstance(model, ModelInfo):
        return {"name": model.name, "version": model.version, "sha256": model.sha256}
    try:
        return {"name": str(model["name"]), "version": str(model["version"]), "sha256": str(model["sha256"])}
    except KeyError as exc:
        raise ValueError(f"model needs name, version and sha256; {exc} is missing") from None


def build_event(
    det: Detection,
    *,
    event_id: uuid.UUID | str,
    unit_id: str,
    seq: int,
    onset: OnsetTime,
    position: Position | None,
    temperature_c: float | None,
    threshold: float,
    model: ModelInfo | Mapping[str, Any],
    firmware: str,
    media_kinds: Iterable[MediaKind] = (),
    phase: Phase | None = None,
    sample_rate: int = 16_000,
    type: EventType = "gunshot",
) -> dict[str, Any]:
    """The event message of a detection (unsigned).

    ``onset`` is the time of ``det``'s first impulse; impulse offsets are relative to it, in milliseconds, from the
    sample indices at ``sample_rate``. ``phase`` defaults to the detection's and must agree with it if given.
    ``event_id`` must be the same for the ``new`` and ``final`` message of one detection.
    """
    phase = det.phase if phase is None else phase
    if phase != det.phase:
        raise ValueError(f"phase {phase!r} disagrees with the detection's {det.phase!r}")
    if not det.impulses:
        raise ValueError("a detection without impulses cannot be reported")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate {sample_rate} must be positive")
    _one_of("event type", type, EventType)
    first = det.impulses[0].onset
    impulses = []
    for imp in det.impulses:
        if imp.onset < first:
            raise ValueError(f"impulse at sample {imp.onset} precedes the onset at sample {first}")
        impulses.append(
            {
                "offset_ms": round((imp.onset - first) * 1000.0 / sample_rate, OFFSET_DECIMALS),
                "score": _score("impulse score", imp.score),
                "peak_dbfs": _finite_float("peak_dbfs", imp.peak_dbfs, None, 0.0),
            }
        )
    kinds = list(media_kinds)
    for kind in kinds:
        _one_of("media kind", kind, MediaKind)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"media kinds {kinds} repeat a kind")
    return {
        "schema": SCHEMA_VERSION["event"],
        "event_id": _uuid("event_id", event_id),
        "phase": phase,
        "unit_id": _unit(unit_id),
        "seq": _seq(seq),
        "type": type,
        "onset_utc": iso_utc(onset.utc_ns),
        "onset_ns": onset.utc_ns,
        "time_source": onset.source,
        "time_uncertainty_us": _float_or_none(onset.uncertainty_us),
        "position": (position or Position()).to_json(),
        "temperature_c": _float_or_none(_finite("temperature_c", temperature_c, -80.0, 80.0)),
        "score": max(i["score"] for i in impulses),
        "threshold": _score("threshold", threshold, decimals=None),
        "rounds": len(impulses),
        "impulses": impulses,
        "model": model_fields(model),
        "firmware": _text("firmware", firmware, 64),
        "media": [{"kind": kind, "expected": True} for kind in kinds],
    }


def build_media(
    *,
    event_id: uuid.UUID | str,
    unit_id: str,
    seq: int,
    kind: MediaKind,
    state: MediaState,
    sha256: str | None = None,
    size_bytes: int | None = None,
    duration_s: float | None = None,
    uri: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A media announcement (unsigned): ``ready`` needs sha256, size, duration and uri; ``purged`` the first three
    (which file went); ``failed`` a reason."""
    _one_of("media kind", kind, MediaKind)
    _one_of("media state", state, MediaState)
    if state in ("ready", "purged") and (sha256 is None or size_bytes is None or duration_s is None):
        raise ValueError(f"media state {state!r} needs sha256, size_bytes and duration_s")
    if (state == "ready") != (uri is not None):
        raise ValueError(f"media state {state!r}: a uri is given exactly when the media is ready")
    if state == "failed" and not reason:
        raise ValueError("media state 'failed' needs a reason")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise ValueError(f"sha256 {sha256!r} must be 64 lower-case hex digits")
    if size_bytes is not None and (isinstance(size_bytes, bool) or size_bytes < 0):
        raise ValueError(f"size_bytes {size_bytes!r} must be a non-negative integer")
    message: dict[str, Any] = {
        "schema": SCHEMA_VERSION["media"],
        "event_id": _uuid("event_id", event_id),
        "unit_id": _unit(unit_id),
        "seq": _seq(seq),
        "kind": kind,
        "state": state,
        "sha256": sha256,
        "bytes": size_bytes,
        "duration_s": _float_or_none(_finite("duration_s", duration_s, 0.0)),
        "uri": None if uri is None else _text("uri", uri, 2048),
    }
    if reason is not None:
        message["reason"] = _text("reason", reason, 256)
    return message


def build_status(
    *,
    state: UnitState,
    since_ns: int,
    firmware: str,
    model: ModelInfo | Mapping[str, Any] | None,
    reasons: Sequence[str] = (),
) -> dict[str, Any]:
    """The retained status message (and, with state ``offline``, the last will)."""
    _one_of("unit state", state, UnitState)
    return {
        "schema": SCHEMA_VERSION["status"],
        "state": state,
        "since": iso_utc(since_ns),
        "firmware": _text("firmware", firmware, 64),
        "model": None if model is None else model_fields(model),
        "reasons": [_text("reason", r, 128) for r in reasons],
    }


def build_reply(
    *,
    request_id: str,
    command: str,
    ok: bool,
    ts_ns: int,
    result: Any = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The reply to a command; ``error`` (required when not ``ok``) says why, ``result`` is omitted when None."""
    if ok == (error is not None):
        raise ValueError("a reply carries an error exactly when ok is false")
    reply: dict[str, Any] = {
        "schema": SCHEMA_VERSION["reply"],
        "request_id": request_id,
        "command": command,
        "ok": bool(ok),
        "ts": iso_utc(ts_ns),
    }
    if result is not None:
        reply["result"] = result
    if error is not None:
        reply["error"] = _text("error", error, 1024)
    return reply


def build_reclassification(
    *,
    reclass_id: uuid.UUID | str,
    event_id: uuid.UUID | str,
    new_type: NewType,
    reason: str,
    ts_ns: int,
    unit_id: str | None = None,
    reviewer: str | None = None,
) -> dict[str, Any]:
    """A statement (unsigned) that event ``event_id`` is of ``new_type``, by a unit or by a reviewer (exactly one)."""
    if (unit_id is None) == (reviewer is None):
        raise ValueError("a reclassification names exactly one issuer: unit_id or reviewer")
    _one_of("new type", new_type, NewType)
    message: dict[str, Any] = {
        "schema": SCHEMA_VERSION["reclassification"],
        "reclass_id": _uuid("reclass_id", reclass_id),
        "event_id": _uuid("event_id", event_id),
    }
    if unit_id is not None:
        message["unit_id"] = _unit(unit_id)
    if reviewer is not None:
        message["reviewer"] = _unit(reviewer)
    message.update({"new_type": new_type, "reason": _text("reason", reason, 1024), "ts": iso_utc(ts_ns)})
    return message


def build_incident(
    *,
    incident_id: uuid.UUID | str,
    onset_ns: int,
    lat: float,
    lon: float,
    error_m: float,
    rounds: int,
    events: Sequence[uuid.UUID | str],
    units: Sequence[str],
    confidence: float,
) -> dict[str, Any]:
    """A fused, located incident as the central reference subscriber publishes it."""
    if rounds < 1 or not events or not units:
        raise ValueError("an incident has at least one round, one event and one unit")
    return {
        "schema": SCHEMA_VERSION["incident"],
        "incident_id": _uuid("incident_id", incident_id),
        "onset_utc": iso_utc(onset_ns),
        "location": {
            "lat": _finite_float("lat", lat, -90.0, 90.0),
            "lon": _finite_float("lon", lon, -180.0, 180.0),
            "error_m": _finite_float("error_m", error_m, 0.0),
        },
        "rounds": int(rounds),
        "events": list(dict.fromkeys(_uuid("event_id", e) for e in events)),
        "units": list(dict.fromkeys(_unit(u) for u in units)),
        "confidence": _score("confidence", confidence, decimals=None),
    }


def _one_of(what: str, value: object, allowed: object) -> None:
    options = get_args(allowed)
    if value not in options:
        raise ValueError(f"{what} {value!r} must be one of {', '.join(map(repr, options))}")


def _finite(what: str, value: float | None, low: float | None = None, high: float | None = None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = f" within [{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{what} {value!r} must be a finite number{bounds}")
    return value


def _finite_float(what: str, value: float, low: float | None = None, high: float | None = None) -> float:
    number = float(value)
    _finite(what, number, low, high)
    return number


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _score(what: str, value: float, decimals: int | None = SCORE_DECIMALS) -> float:
    score = float(value)
    _finite(what, score, 0.0, 1.0)
    return score if decimals is None else round(score, decimals)


def _uuid(what: str, value: uuid.UUID | str) -> str:
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{what} {value!r} is not a UUID") from None


def _unit(unit_id: str) -> str:
    if not isinstance(unit_id, str) or not UNIT_ID.fullmatch(unit_id):
        raise ValueError(f"id {unit_id!r} must match [a-z0-9-]{{1,64}}")
    return unit_id


def _seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"seq {seq!r} must be an integer >= 1")
    return seq


def _text(what: str, value: str, limit: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise ValueError(f"{what} {value!r} must be a string of 1 to {limit} characters")
    return value
