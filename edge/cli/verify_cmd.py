"""``polewatch verify [--key PUB.pem | --cert SIGNING.crt [--ca CA.crt]] FILE|-``: check signed messages.

FILE (``-`` for stdin) holds one JSON message, a JSON array of messages, or JSON lines; a line may start with its
topic, as ``mosquitto_sub -v`` prints it (``TOPIC {...}``), and then the topic must match the message's unit and kind.
Each signed message (event, media, reclassification) is checked against its schema and its signature; with
``--cert`` the certificate must name the message's unit (or reviewer), and with ``--ca`` it must have been issued
by that CA and be valid ``--at`` the given time (default: now). ``--key``/``--cert`` may be repeated: each message is
checked with the key its ``signature.key_id`` names. Prints one line per message, ``OK ...`` or ``FAIL ...: reason``
(``SKIP`` for unsigned kinds such as status or health); exits 0 only if every signed message verified.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.errors import MessageError, SignatureError
from edge.transport import schema, signing

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Verifier:
    key: Ed25519PublicKey
    cert: x509.Certificate | None
    source: Path

    @property
    def key_id(self) -> str:
        return signing.public_key_id(self.key)


@dataclass(frozen=True)
class Captured:
    where: str
    """``line N`` (or ``message N`` of an array) for error messages."""
    topic: str | None
    payload: Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check the signatures (and certificates) of captured events, media and reclassifications",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("file", metavar="FILE", help="message file, JSON lines, or - for stdin")
    parser.add_argument(
        "--key", type=Path, action="append", default=[], metavar="PUB.pem", help="Ed25519 public key (repeatable)"
    )
    parser.add_argument(
        "--cert", type=Path, action="append", default=[], metavar="CERT", help="signing certificate (repeatable)"
    )
    parser.add_argument("--ca", type=Path, default=None, metavar="CA.crt", help="check --cert against this CA")
    parser.add_argument(
        "--at", default=None, metavar="TIME", help="check certificate validity at this ISO 8601 time (default: now)"
    )
    parser.add_argument("--no-schema", action="store_true", help="check signatures only, not the message schemas")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.key and not args.cert:
        print("polewatch verify: give --key PUB.pem or --cert CERT (with --ca CA.crt to check it)", file=sys.stderr)
        return EXIT_USAGE
    if args.ca is not None and not args.cert:
        print("polewatch verify: --ca checks certificates: give --cert too", file=sys.stderr)
        return EXIT_USAGE
    try:
        at = _parse_time(args.at) if args.at else datetime.now(UTC)
    except ValueError:
        print(f"polewatch verify: --at {args.at!r} is not an ISO 8601 time", file=sys.stderr)
        return EXIT_USAGE
    verifiers = [Verifier(signing.load_public_key(p), None, p) for p in args.key]
    for path in args.cert:
        cert = signing.load_certificate(path)
        verifiers.append(Verifier(signing.certificate_key(cert), cert, path))
    ca = signing.load_certificate(args.ca) if args.ca else None
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")

    verified = failed = 0
    for captured in read_messages(text):
        line = check(captured, verifiers, ca, at, schemas=not args.no_schema)
        print(line)
        verified += line.startswith("OK ")
        failed += line.startswith("FAIL ")
    if failed:
        return EXIT_FAILED
    if not verified:
        print(f"polewatch verify: no signed message in {args.file}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def read_messages(text: str) -> Iterator[Captured]:
    """One message, a JSON array of messages, or JSON lines (each optionally ``TOPIC {...}``)."""
    try:
        whole = _loads(text)
    except ValueError:
        pass
    else:
        if isinstance(whole, list):
            for i, item in enumerate(whole, 1):
                yield Captured(f"message {i}", None, item)
        else:
            yield Captured("message 1", None, whole)
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        topic = None
        if not line.startswith("{") and " {" in line:
            topic, line = line.split(" ", 1)
        try:
            yield Captured(f"line {number}", topic, _loads(line))
        except ValueError as exc:
            yield Captured(f"line {number}", topic, exc)


def check(
    captured: Captured, verifiers: list[Verifier], ca: x509.Certificate | None, at: datetime, *, schemas: bool = True
) -> str:
    """The report line of one message: ``OK ...``, ``FAIL ...: reason`` or ``SKIP ...``."""
    payload = captured.payload
    if isinstance(payload, ValueError):
        return f"FAIL {captured.where}: not JSON ({payload})"
    if not isinstance(payload, dict):
        return f"FAIL {captured.where}: not a JSON object"
    try:
        kind = schema.kind_of(payload)
    except MessageError as exc:
        return f"FAIL {captured.where}: {exc.problem}"
    what = describe(kind, payload)
    if kind not in schema.SIGNED_KINDS:
        return f"SKIP {what}: {kind} messages are not signed"
    try:
        if schemas:
            schema.validate(kind, payload)
        _check_topic(captured.topic, kind, payload)
        verifier = _choose(verifiers, payload)
        if verifier.cert is not None:
            signing.verify_with_certificate(payload, verifier.cert, ca, at=at)
        else:
            signing.verify(payload, verifier.key)
    except (MessageError, SignatureError) as exc:
        return f"FAIL {what}: {exc}"
    return f"OK {what} key={verifier.key_id}"


def describe(kind: str, payload: Mapping[str, Any]) -> str:
    def get(name: str) -> Any:
        return payload.get(name, "?")

    if kind == "event":
        return f"event {get('event_id')} phase={get('phase')} unit={get('unit_id')} seq={get('seq')}"
    if kind == "media":
        return f"media {get('event_id')} kind={get('kind')} state={get('state')} unit={get('unit_id')}"
    if kind == "reclassification":
        by = f"unit={payload['unit_id']}" if "unit_id" in payload else f"reviewer={get('reviewer')}"
        return f"reclassification {get('reclass_id')} event={get('event_id')} new_type={get('new_type')} {by}"
    return f"{kind} unit={payload['unit_id']}" if "unit_id" in payload else kind


def _choose(verifiers: list[Verifier], payload: Mapping[str, Any]) -> Verifier:
    if len(verifiers) == 1:
        return verifiers[0]  # a key_id mismatch is then reported as such by signing.verify
    signature = payload.get("signature")
    wanted = signature.get("key_id") if isinstance(signature, Mapping) else None
    if wanted is None:
        raise SignatureError("missing", "the message carries no signature")
    for verifier in verifiers:
        if verifier.key_id == wanted:
            return verifier
    raise SignatureError("key_id", f"signed with key {wanted!r}, which none of the {len(verifiers)} keys given is")


def _check_topic(topic: str | None, kind: str, payload: Mapping[str, Any]) -> None:
    if topic is None:
        return
    unit = payload.get("unit_id")
    expected = f"/{unit}/{kind}" if unit is not None else f"/{kind}"
    if not topic.endswith(expected):
        owner = f"unit {unit}" if unit is not None else "a reviewer"
        raise MessageError(kind, "topic", f"{topic!r} is not the {kind} topic of {owner}")


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
