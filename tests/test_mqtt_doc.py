"""docs/mqtt.md stays true: its examples are what the builders produce, validate and (when signed) verify.

Regenerate the examples after changing a builder or schema with ``python -m tests.test_mqtt_doc``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.detect.bursts import Detection, Impulse
from edge.transport import schema, signing
from edge.transport.messages import (
    OnsetTime,
    Position,
    build_event,
    build_incident,
    build_media,
    build_reclassification,
    build_reply,
    build_status,
)
from edge.transport.topics import Topics

DOC = Path(__file__).resolve().parents[1] / "docs" / "mqtt.md"
EXAMPLE = re.compile(r"<!-- example: ([a-z-]+) -->\n```json\n(.*?)```", re.DOTALL)
KEY_BLOCK = re.compile(r"<!-- example-key -->\n```text\n(.*?)```", re.DOTALL)

EVENT_ID = "3f8e4c1a-5b2d-4e6f-9a7b-8c9d0e1f2a3b"
UNIT = "pole-17"
ONSET_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
MODEL = {"name": "polewatch-cnn", "version": "1.0.0", "sha256": hashlib.sha256(b"gunshot.tflite").hexdigest()}
FIRMWARE = "0.1.0"


def doc_key() -> Ed25519PrivateKey:
    """The documentation's signing key: derived from a public phrase, never used on a unit."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"polewatch documentation key").digest())


def examples() -> dict[str, dict[str, Any]]:
    key = doc_key()
    first = Impulse(onset=160_000, score=0.9731, peak_dbfs=-4.2)
    rounds = (first, Impulse(162_880, 0.9412, -5.0), Impulse(165_760, 0.9655, -4.8))
    common: dict[str, Any] = {
        "event_id": EVENT_ID,
        "unit_id": UNIT,
        "onset": OnsetTime(ONSET_NS, "gps-pps", 1.8),
        "position": Position(52.520008, 13.404954, 74.5, 0.5, "surveyed"),
        "temperature_c": 4.5,
        "threshold": 0.62,
        "model": MODEL,
        "firmware": FIRMWARE,
        "media_kinds": ["audio", "clip"],
    }
    new = build_event(Detection(7, "new", (first,)), seq=41, **common)
    final = build_event(Detection(7, "final", rounds), seq=42, **common)
    clip_hash = hashlib.sha256(b"clip").hexdigest()
    ready = build_media(
        event_id=EVENT_ID,
        unit_id=UNIT,
        seq=12,
        kind="clip",
        state="ready",
        sha256=clip_hash,
        size_bytes=2_481_337,
        duration_s=5.0,
        uri=f"https://media.example.org/polewatch/{UNIT}/{EVENT_ID}/clip.mp4",
    )
    failed = build_media(
        event_id=EVENT_ID, unit_id=UNIT, seq=13, kind="audio", state="failed", reason="speech guard: withheld"
    )
    purged = build_media(
        event_id=EVENT_ID,
        unit_id=UNIT,
        seq=97,
        kind="clip",
        state="purged",
        sha256=clip_hash,
        size_bytes=2_481_337,
        duration_s=5.0,
        reason="retention 30 d",
    )
    since = ONSET_NS - 86_400 * 10**9
    health = {
        "schema": schema.HEALTH_SCHEMA,
        "unit_id": UNIT,
        "ts": "2026-01-01T00:01:00.000000Z",
        "uptime_s": 86460.0,
        "mic": {"rms_dbfs": -48.3, "noise_floor_dbfs": -61.0, "clipping_ratio": 0.0, "overflows": 0},
        "gps": {"fix": "3d", "satellites": 11, "pps": True},
        "clock": {"source": "gps-pps", "synchronized": True, "offset_us": -0.4, "uncertainty_us": 1.2},
        "disk": {"free_bytes": 27_913_342_976, "used_fraction": 0.07},
        "temperature_c": 38.5,
        "outbox": {"depth": 0, "oldest_s": None},
    }
    return {
        "event-new": signing.sign(new, key),
        "event-final": signing.sign(final, key),
        "media-ready": signing.sign(ready, key),
        "media-failed": signing.sign(failed, key),
        "media-purged": signing.sign(purged, key),
        "status-online": build_status(state="online", since_ns=since, firmware=FIRMWARE, model=MODEL),
        "status-offline": build_status(
            state="offline", since_ns=since, firmware=FIRMWARE, model=MODEL, reasons=["connection-lost"]
        ),
        "health": health,
        "command": {"schema": schema.COMMAND_SCHEMA, "request_id": "c0ffee01", "args": {"threshold": 0.7}},
        "reply-ok": build_reply(
            request_id="c0ffee01",
            command="set-threshold",
            ok=True,
            ts_ns=ONSET_NS + 5 * 10**9,
            result={"threshold": 0.7, "previous": 0.62},
        ),
        "reply-error": build_reply(
            request_id="c0ffee02",
            command="set-threshold",
            ok=False,
            ts_ns=ONSET_NS + 6 * 10**9,
            error="threshold 1.7 must be between 0 and 1",
        ),
        "reclassification": signing.sign(
            build_reclassification(
                reclass_id="9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
                event_id=EVENT_ID,
                new_type="not-gunshot",
                reason="New Year fireworks, confirmed by patrol",
                ts_ns=ONSET_NS + 3600 * 10**9,
                reviewer="analyst-3",
            ),
            key,
        ),
        "incident": build_incident(
            incident_id="6a1f0c2e-8d4b-4f3a-b5e6-7c8d9e0f1a2b",
            onset_ns=ONSET_NS - 150_000_000,
            lat=52.520512,
            lon=13.405711,
            error_m=2.4,
            rounds=3,
            events=[EVENT_ID, "0b7c6d5e-4f3a-4b2c-8d1e-9f0a1b2c3d4e", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"],
            units=[UNIT, "pole-18", "pole-23"],
            confidence=0.97,
        ),
    }


def render(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def doc_examples(text: str) -> dict[str, str]:
    return {name: body for name, body in EXAMPLE.findall(text)}


def regenerate(path: Path = DOC) -> None:
    generated = examples()
    text = path.read_text(encoding="utf-8")
    text = EXAMPLE.sub(lambda m: f"<!-- example: {m[1]} -->\n```json\n{render(generated[m[1]])}```", text)
    pem = signing.public_key_pem(doc_key().public_key()).decode("ascii")
    text = KEY_BLOCK.sub(lambda m: f"<!-- example-key -->\n```text\n{pem}```", text)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_example_is_in_the_doc_as_generated(doc_text: str) -> None:
    in_doc = doc_examples(doc_text)
    generated = examples()
    assert sorted(in_doc) == sorted(generated), "run: python -m tests.test_mqtt_doc"
    for name, payload in generated.items():
        assert json.loads(in_doc[name]) == payload, f"example {name} is stale; run: python -m tests.test_mqtt_doc"


def test_doc_examples_validate_and_signed_ones_verify(doc_text: str) -> None:
    key = signing.public_key_pem(doc_key().public_key()).decode("ascii")
    blocks = KEY_BLOCK.findall(doc_text)
    assert blocks == [key]
    for name, body in doc_examples(doc_text).items():
        payload = json.loads(body)
        kind = name.split("-")[0]
        assert schema.kind_of(payload) == kind
        schema.validate(kind, payload)
        if kind in schema.SIGNED_KINDS:
            signing.verify(payload, doc_key().public_key())


def test_every_kind_has_an_example(doc_text: str) -> None:
    kinds = {name.split("-")[0] for name in doc_examples(doc_text)}
    assert kinds == set(schema.KINDS)


def test_the_topic_table_names_every_topic(doc_text: str) -> None:
    topics = Topics("unit", prefix="prefix")
    for topic in (
        topics.status,
        topics.event,
        topics.media,
        topics.health,
        topics.command("name"),
        topics.reply("name"),
    ):
        placeholder = topic.replace("prefix/unit", "{prefix}/{unit}").replace("/name", "/{name}")
        assert f"`{placeholder}`" in doc_text
    assert "`{prefix}/{unit}/reclassification`" in doc_text
    assert f"`{topics.incident.replace('prefix', '{prefix}')}`" in doc_text
    for kind in schema.KINDS:
        assert schema.SCHEMA_VERSION[kind] in doc_text


def test_the_canonical_json_example_is_what_signing_produces(doc_text: str) -> None:
    match = re.search(
        r"<!-- canonical-input -->\n```json\n(.*?)```\n.*?<!-- canonical-output -->\n```text\n(.*?)\n```",
        doc_text,
        re.DOTALL,
    )
    assert match is not None
    assert signing.canonical_json(json.loads(match[1])).decode("utf-8") == match[2]


if __name__ == "__main__":
    regenerate()
    sys.stdout.write(f"rewrote the examples in {DOC}\n")
