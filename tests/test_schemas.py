"""The schema files are the contract: well-formed, documented, closed, and what the builders produce fits them."""

from __future__ import annotations

import copy
import json
import math
import uuid
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from edge.detect.bursts import Detection, Impulse
from edge.errors import MessageError
from edge.transport import schema
from edge.transport.messages import (
    OnsetTime,
    Position,
    build_event,
    build_incident,
    build_media,
    build_reclassification,
    build_reply,
    build_status,
    iso_utc,
)

SHA = "ab" * 32
MODEL = {"name": "polewatch-cnn", "version": "1.0.0", "sha256": "cd" * 32}
OPEN_OBJECTS = {("command", "args")}
"""Objects whose content another contract defines (each command its own args)."""


def detection(offsets: tuple[int, ...] = (0, 2880, 5760), phase: str = "final", start: int = 48_000) -> Detection:
    impulses = tuple(Impulse(start + o, 0.9 - 0.01 * i, -6.0 - i) for i, o in enumerate(offsets))
    return Detection(3, "final" if phase == "final" else "new", impulses)


def event(det: Detection | None = None, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "event_id": uuid.UUID("12345678-1234-4234-8234-123456789abc"),
        "unit_id": "pole-17",
        "seq": 1,
        "onset": OnsetTime(1_767_225_600_000_000_000, "gps-pps", 2.0),
        "position": Position(52.5, 13.4, 40.0, 1.0, "surveyed"),
        "temperature_c": 10.0,
        "threshold": 0.6,
        "model": MODEL,
        "firmware": "0.1.0",
        "media_kinds": ["audio"],
    }
    args.update(overrides)
    return build_event(det or detection(), **args)


def rejects(kind: str, payload: Any, path: str, *, signed: bool = False) -> MessageError:
    with pytest.raises(MessageError) as caught:
        schema.validate(kind, payload, signed=signed)
    assert caught.value.kind == kind
    assert caught.value.path == path, str(caught.value)
    assert str(caught.value).startswith(f"{kind} message, at {path}: ")
    return caught.value


# -- the files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", schema.KINDS)
def test_schema_file_is_valid_2020_12_and_ships_as_package_data(kind: str) -> None:
    resource = files("edge.transport").joinpath("schemas", f"{kind}.schema.json")
    document = json.loads(resource.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document == schema.load_schema(kind)


def _objects(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, value in node.items():
            found += _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _objects(value, f"{path}/{i}")
    return found


@pytest.mark.parametrize("kind", schema.KINDS)
def test_every_field_is_described_and_every_object_closed(kind: str) -> None:
    document = schema.load_schema(kind)
    defs = document.get("$defs", {})
    for path, node in _objects(document, kind):
        if "type" not in node:
            continue  # an if/then/else refinement, not a definition
        assert node.get("additionalProperties") is False, f"{path} is open"
        for name, field in node["properties"].items():
            target = defs[field["$ref"].rsplit("/", 1)[1]] if "$ref" in field else field
            assert field.get("description") or target.get("description"), f"{path}.{name} has no description"
            if target.get("type") == "object" and "properties" not in target:
                assert (kind, name) in OPEN_OBJECTS, f"{path}.{name} is an undeclared open object"


@pytest.mark.parametrize("kind", schema.KINDS)
def test_schema_version_constant_matches_the_file(kind: str) -> None:
    pattern = schema.load_schema(kind)["properties"]["schema"]["pattern"]
    assert pattern.startswith(f"^polewatch/{kind}/1")
    assert schema.SCHEMA_VERSION[kind] == f"polewatch/{kind}/1"
    assert getattr(schema, f"{kind.upper()}_SCHEMA") == schema.SCHEMA_VERSION[kind]


# -- builders produce valid messages ----------------------------------------------------------------------------

impulse_scores = st.floats(0.0, 1.0, allow_nan=False)
peaks = st.floats(-120.0, 0.0, allow_nan=False)


@st.composite
def detections(draw: st.DrawFn) -> Detection:
    start = draw(st.integers(0, 2**40))
    gaps = draw(st.lists(st.integers(0, 40_000), min_size=0, max_size=30))
    onsets = [start]
    for gap in gaps:
        onsets.append(onsets[-1] + gap)
    impulses = tuple(Impulse(o, draw(impulse_scores), draw(peaks)) for o in onsets)
    phase = draw(st.sampled_from(["new", "final"]))
    return Detection(draw(st.integers(1, 10_000)), "new" if phase == "new" else "final", impulses)


onset_times = st.one_of(
    st.builds(
        OnsetTime,
        st.integers(0, 2**63 - 1),
        st.sampled_from(["gps-pps", "gps", "ntp"]),
        st.floats(0.0, 1e9, allow_nan=False),
    ),
    st.builds(OnsetTime, st.integers(0, 2**63 - 1), st.just("none"), st.none()),
)
positions = st.one_of(
    st.just(Position()),
    st.builds(
        Position,
        st.floats(-90, 90),
        st.floats(-180, 180),
        st.none() | st.floats(-500, 9000),
        st.none() | st.floats(0, 1e4),
        st.sampled_from(["gps", "surveyed"]),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    det=detections(),
    onset=onset_times,
    position=positions,
    temperature=st.none() | st.floats(-40, 60),
    threshold=impulse_scores,
    seq=st.integers(1, 2**53),
    rate=st.sampled_from([16_000, 44_100, 48_000]),
    kinds=st.sampled_from([[], ["audio"], ["clip", "audio"]]),
    event_type=st.sampled_from(["gunshot", "test"]),
)
def test_build_event_always_validates(
    det: Detection,
    onset: OnsetTime,
    position: Position,
    temperature: float | None,
    threshold: float,
    seq: int,
    rate: int,
    kinds: list[Any],
    event_type: Any,
) -> None:
    message = event(
        det,
        onset=onset,
        position=position,
        temperature_c=temperature,
        threshold=threshold,
        seq=seq,
        sample_rate=rate,
        media_kinds=kinds,
        type=event_type,
        event_id=uuid.uuid4(),
    )
    schema.validate("event", message, signed=False)
    assert message["rounds"] == det.rounds
    assert message["impulses"][0]["offset_ms"] == 0
    assert message["onset_ns"] == onset.utc_ns
    assert json.loads(json.dumps(message, allow_nan=False)) == message


def test_event_new_and_final_share_the_id_and_offsets_are_ms_from_the_first_impulse() -> None:
    new = event(detection((0,), phase="new"))
    final = event(detection((0, 2880, 5760)))
    assert new["event_id"] == final["event_id"] == "12345678-1234-4234-8234-123456789abc"
    assert (new["phase"], new["rounds"], final["phase"], final["rounds"]) == ("new", 1, "final", 3)
    assert [i["offset_ms"] for i in final["impulses"]] == [0.0, 180.0, 360.0]
    assert final["score"] == max(i["score"] for i in final["impulses"])
    assert new["onset_utc"] == "2026-01-01T00:00:00.000000Z"


def test_event_builder_takes_model_info_and_refuses_a_phase_mismatch() -> None:
    from edge.detect.runtime import ModelInfo

    info = ModelInfo("m", "2", "ef" * 32, 0.5, ("gunshot", "other"), None, (1,), {})  # type: ignore[arg-type]
    assert event(model=info)["model"] == {"name": "m", "version": "2", "sha256": "ef" * 32}
    with pytest.raises(ValueError, match="disagrees"):
        event(detection(phase="final"), phase="new")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"onset": None}, "utc_ns"),
        ({"unit_id": "Pole_17"}, "must match"),
        ({"seq": 0}, "seq"),
        ({"threshold": math.nan}, "threshold"),
        ({"temperature_c": math.inf}, "temperature_c"),
        ({"event_id": "not-a-uuid"}, "UUID"),
        ({"media_kinds": ["audio", "audio"]}, "repeat"),
        ({"media_kinds": ["photo"]}, "media kind"),
        ({"type": "fireworks"}, "event type"),
    ],
)
def test_event_builder_refuses_what_the_schema_would(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, AttributeError), match=match):
        event(**overrides)


def test_position_refuses_false_precision() -> None:
    """(OnsetTime's own rules are tested with the timebase.)"""
    with pytest.raises(ValueError, match="no coordinates"):
        Position(lat=1.0, source="none")
    with pytest.raises(ValueError, match="needs lat and lon"):
        Position(source="gps")
    with pytest.raises(ValueError, match="lat"):
        Position(91.0, 0.0, source="gps")


def test_iso_utc_truncates_to_the_microsecond() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000000Z"
    assert iso_utc(1_767_225_600_123_456_999) == "2026-01-01T00:00:00.123456Z"
    with pytest.raises(ValueError):
        iso_utc(-1)


def test_media_builder_each_state_validates() -> None:
    common: dict[str, Any] = {"event_id": uuid.uuid4(), "unit_id": "pole-17", "seq": 3, "kind": "clip"}
    ready = build_media(**common, state="ready", sha256=SHA, size_bytes=10, duration_s=5.0, uri="https://x/y.mp4")
    failed = build_media(**common, state="failed", reason="camera unavailable")
    purged = build_media(**common, state="purged", sha256=SHA, size_bytes=10, duration_s=5.0, reason="quota")
    for message in (ready, failed, purged):
        schema.validate("media", message, signed=False)
    with pytest.raises(ValueError, match="uri"):
        build_media(**common, state="purged", sha256=SHA, size_bytes=1, duration_s=1.0, uri="https://x")
    with pytest.raises(ValueError, match="reason"):
        build_media(**common, state="failed")
    with pytest.raises(ValueError, match="sha256"):
        build_media(**common, state="ready", sha256="AB" * 32, size_bytes=1, duration_s=1.0, uri="https://x")


def test_status_reply_reclassification_incident_builders_validate() -> None:
    schema.validate("status", build_status(state="online", since_ns=1, firmware="0.1.0", model=MODEL))
    schema.validate(
        "status", build_status(state="degraded", since_ns=1, firmware="0.1.0", model=None, reasons=["no-gps-fix"])
    )
    schema.validate("reply", build_reply(request_id="r1", command="self-test", ok=True, ts_ns=1, result={"a": 1}))
    schema.validate("reply", build_reply(request_id="r2", command="self-test", ok=False, ts_ns=1, error="busy"))
    with pytest.raises(ValueError, match="error exactly when"):
        build_reply(request_id="r3", command="x", ok=False, ts_ns=1)
    reclass = build_reclassification(
        reclass_id=uuid.uuid4(), event_id=uuid.uuid4(), new_type="test", reason="technician", ts_ns=5, unit_id="pole-1"
    )
    schema.validate("reclassification", reclass, signed=False)
    with pytest.raises(ValueError, match="exactly one issuer"):
        build_reclassification(reclass_id=uuid.uuid4(), event_id=uuid.uuid4(), new_type="test", reason="x", ts_ns=5)
    incident = build_incident(
        incident_id=uuid.uuid4(),
        onset_ns=10,
        lat=1.0,
        lon=2.0,
        error_m=3.0,
        rounds=2,
        events=[uuid.uuid4()],
        units=["pole-1", "pole-1", "pole-2"],
        confidence=0.9,
    )
    assert incident["units"] == ["pole-1", "pole-2"]
    schema.validate("incident", incident)
    schema.validate("command", {"request_id": "r1", "args": {}})


# -- what validation refuses, and how it says so -----------------------------------------------------------------


def test_errors_name_the_kind_the_path_and_the_problem() -> None:
    message = event()
    bad = copy.deepcopy(message)
    bad["impulses"][1]["score"] = 1.5
    assert "greater than the maximum of 1" in rejects("event", bad, "$.impulses[1].score").problem
    bad = copy.deepcopy(message)
    del bad["firmware"]
    assert "'firmware' is a required property" in rejects("event", bad, "$").problem
    bad = copy.deepcopy(message)
    bad["position"]["heading"] = 3
    assert "a typo" in rejects("event", bad, "$.position").problem
    bad = copy.deepcopy(message)
    bad["time_source"] = "sundial"
    rejects("event", bad, "$.time_source")
    with pytest.raises(MessageError, match="'signature' is a required property"):
        schema.validate("event", message)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda m: m.update(rounds=5), "$.rounds"),
        (lambda m: m.update(score=0.1), "$.score"),
        (lambda m: m["impulses"][0].update(offset_ms=3.0), "$.impulses[0].offset_ms"),
        (lambda m: m["impulses"][2].update(offset_ms=1.0), "$.impulses[2].offset_ms"),
        (lambda m: m.update(onset_utc="2026-01-01T00:00:01.000000Z"), "$.onset_utc"),
        (lambda m: m.update(time_source="none"), "$.time_uncertainty_us"),
        (lambda m: m.update(time_uncertainty_us=None), "$.time_uncertainty_us"),
        (lambda m: m["position"].update(source="none", lon=None, alt_m=None, accuracy_m=None), "$.position.lat"),
        (lambda m: m.update(event_id=m["event_id"].upper()), "$.event_id"),
        (lambda m: m.update(onset_utc="2026-01-01T00:00:00Z"), "$.onset_utc"),
    ],
)
def test_event_fields_that_must_agree(change: Any, path: str) -> None:
    message = event()
    change(message)
    rejects("event", message, path)


def test_versions_minor_later_is_read_open_major_other_is_refused() -> None:
    message = event()
    message["schema"] = "polewatch/event/1.2"
    message["wind_mps"] = 3.5
    schema.validate("event", message, signed=False)
    message["score"] = "high"
    rejects("event", message, "$.score")
    exact = event()
    exact["wind_mps"] = 3.5
    rejects("event", exact, "$")
    exact["schema"] = "polewatch/event/2"
    assert "this code reads 1" in rejects("event", exact, "$.schema").problem
    exact["schema"] = "polewatch/media/1"
    assert "declares a media message" in rejects("event", exact, "$.schema").problem


def test_kind_of_reads_the_schema_field() -> None:
    assert schema.kind_of({"schema": "polewatch/reclassification/1"}) == "reclassification"
    assert schema.kind_of({"schema": "polewatch/event/1.4"}) == "event"
    for bad in ({}, {"schema": "polewatch/toast/1"}, {"schema": 1}):
        with pytest.raises(MessageError, match=r"\$\.schema"):
            schema.kind_of(bad)
    with pytest.raises(ValueError, match="unknown message kind"):
        schema.validate("toast", {})


def test_media_status_reply_reclassification_rules() -> None:
    media = build_media(event_id=uuid.uuid4(), unit_id="u", seq=1, kind="audio", state="failed", reason="x")
    del media["reason"]
    rejects("media", media, "$")
    media.update(state="ready", sha256=SHA, bytes=1, duration_s=1.0)
    rejects("media", media, "$.uri")
    reply = build_reply(request_id="r", command="self-test", ok=True, ts_ns=0)
    reply["error"] = "nope"
    rejects("reply", reply, "$")
    reclass = build_reclassification(
        reclass_id=uuid.uuid4(), event_id=uuid.uuid4(), new_type="test", reason="r", ts_ns=0, reviewer="ana"
    )
    reclass["unit_id"] = "pole-1"
    assert "exactly one of unit_id, reviewer" in rejects("reclassification", reclass, "$").problem
    status = build_status(state="online", since_ns=0, firmware="1", model=None)
    status["state"] = "asleep"
    rejects("status", status, "$.state")
    rejects("health", [], "$")
