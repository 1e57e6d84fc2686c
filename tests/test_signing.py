"""Signatures: canonical JSON, sign/verify, tampering, key files and the unit certificate check."""

from __future__ import annotations

import copy
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import MessageError, SignatureError
from edge.transport import schema, signing
from tests.test_schemas import detection, event
from tools import pki

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def signed_event() -> dict[str, Any]:
    return signing.sign(event(detection((0, 1600, 3200, 4800))), KEY)


def reason(payload: Any, key: Any = None) -> str:
    with pytest.raises(SignatureError) as caught:
        signing.verify(payload, key or KEY.public_key())
    return caught.value.reason


# -- canonical JSON ----------------------------------------------------------------------------------------------


def test_canonical_form_follows_the_documented_rules() -> None:
    payload = {"unit_id": "pole-17", "b": [3, 1.0, 1e-5, 12.5, 1.5e16], "a": {"z": None, "é": 'Zürich "Süd"\n\x01'}}
    payload["signature"] = {"alg": "x"}
    assert (
        signing.canonical_json(payload)
        == (
            '{"a":{"z":null,"é":"Zürich \\"Süd\\"\\n\\u0001"},"b":[3,1.0,1e-05,12.5,1.5e+16],"unit_id":"pole-17"}'
        ).encode()
    )


@given(st.permutations(list(signed_event().items())))
def test_canonical_form_does_not_depend_on_key_order(items: list[tuple[str, Any]]) -> None:
    reordered = dict(items)
    reordered["position"] = dict(reversed(list(reordered["position"].items())))
    assert signing.canonical_json(reordered) == signing.canonical_json(signed_event())
    signing.verify(reordered, KEY.public_key())


def test_canonical_form_survives_a_json_round_trip() -> None:
    message = signed_event()
    assert signing.canonical_json(json.loads(json.dumps(message, indent=3))) == signing.canonical_json(message)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"a": float("nan")}, "$.a"),
        ({"a": [1, float("inf")]}, "$.a[1]"),
        ({"a": {1: "x"}}, "$.a"),
        ({"a": {"b": object()}}, "$.a.b"),
        ({"a": "\ud800"}, "$"),
    ],
)
def test_canonical_form_refuses_what_json_cannot_carry(payload: dict[str, Any], path: str) -> None:
    with pytest.raises(MessageError) as caught:
        signing.canonical_json(payload)
    assert caught.value.path == path
    with pytest.raises(MessageError):
        signing.sign(payload, KEY)


# -- sign and verify ---------------------------------------------------------------------------------------------


def test_round_trip_and_the_signature_field() -> None:
    message = signed_event()
    signing.verify(message, KEY.public_key())
    schema.validate("event", message)
    assert message["signature"]["alg"] == "ed25519"
    assert message["signature"]["key_id"] == signing.public_key_id(KEY.public_key())
    assert list(message)[-1] == "signature"
    # Ed25519 is deterministic: signing again gives the same bytes, and an old signature field is replaced
    assert signing.sign(message, KEY) == message


def test_sign_does_not_share_state_with_its_input() -> None:
    unsigned = event()
    message = signing.sign(unsigned, KEY)
    unsigned["impulses"][0]["score"] = 0.0
    signing.verify(message, KEY.public_key())


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    import hashlib

    raw = KEY.public_key().public_bytes_raw()
    assert signing.public_key_id(KEY.public_key()) == hashlib.sha256(raw).hexdigest()[:16]
    with pytest.raises(ValueError, match="not the id"):
        signing.sign(event(), KEY, signing.public_key_id(OTHER.public_key()))


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for i, value in enumerate(node) for leaf in _leaves(value, (*path, i))]
    return [path]


def _changed(value: Any, salt: int) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 + salt
    if isinstance(value, float):
        return value + 0.5 + salt if salt % 2 else float(int(value)) if value != int(value) else int(value)
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    return 0  # None


SIGNED = signed_event()
CONTENT_LEAVES = [leaf for leaf in _leaves(SIGNED) if leaf[0] != "signature"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CONTENT_LEAVES), st.integers(0, 5))
def test_any_single_field_change_fails_as_tampered(leaf: tuple[Any, ...], salt: int) -> None:
    message = copy.deepcopy(SIGNED)
    parent = message
    for part in leaf[:-1]:
        parent = parent[part]
    before = parent[leaf[-1]]
    parent[leaf[-1]] = _changed(before, salt)
    assert parent[leaf[-1]] != before or type(parent[leaf[-1]]) is not type(before)
    assert reason(message) == "bad"


@given(st.sampled_from([name for name in SIGNED if name != "signature"]))
def test_removing_or_adding_a_field_fails_as_tampered(name: str) -> None:
    removed = copy.deepcopy(SIGNED)
    del removed[name]
    assert reason(removed) == "bad"
    added = copy.deepcopy(SIGNED)
    added[name + "_x"] = 1
    assert reason(added) == "bad"


def test_reasons_for_each_kind_of_failure() -> None:
    message = signed_event()
    unsigned = {k: v for k, v in message.items() if k != "signature"}
    assert reason(unsigned) == "missing"
    assert reason({**message, "signature": "abc"}) == "missing"
    assert reason({**message, "signature": {**message["signature"], "alg": "rsa"}}) == "alg"
    assert reason(message, OTHER.public_key()) == "key_id"
    # a forger who rewrites key_id to the verifier's still fails
    forged = {**message, "signature": {**message["signature"], "key_id": signing.public_key_id(OTHER.public_key())}}
    assert reason(forged, OTHER.public_key()) == "bad"
    assert reason({**message, "signature": {**message["signature"], "value": "AAAA"}}) == "malformed"
    assert reason({**message, "signature": {**message["signature"], "value": "%%%"}}) == "malformed"
    assert reason({**message, "score": float("nan")}) == "malformed"
    with pytest.raises(SignatureError, match="altered after signing"):
        signing.verify({**message, "rounds": 5}, KEY.public_key())


# -- key files ---------------------------------------------------------------------------------------------------


def test_key_files_round_trip_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    path.parent.mkdir()
    signing.save_private_key(KEY, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = signing.load_private_key(path)
    assert signing.public_key_id(loaded.public_key()) == signing.public_key_id(KEY.public_key())
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()  # PKCS#8
    with pytest.raises(FileExistsError):
        signing.save_private_key(OTHER, path)
    signing.save_private_key(OTHER, path, overwrite=True)
    assert signing.public_key_id(signing.load_private_key(path).public_key()) == signing.public_key_id(
        OTHER.public_key()
    )
    assert [p.name for p in path.parent.iterdir()] == ["signing.pem"]
    public = tmp_path / "signing.pub.pem"
    signing.save_public_key(OTHER.public_key(), public)
    signing.verify(signing.sign(event(), OTHER), signing.load_public_key(public))


def test_loading_warns_about_a_readable_key_and_refuses_other_key_types(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "signing.pem"
    signing.save_private_key(KEY, path)
    path.chmod(0o644)
    signing.load_private_key(path)
    assert "readable by other users" in caplog.text
    ec_key = tmp_path / "ec.pem"
    signing.write_file(ec_key, signing.private_key_pem(ec.generate_private_key(ec.SECP256R1())), mode=0o600)
    with pytest.raises(SignatureError, match="not an Ed25519 signing key") as caught:
        signing.load_private_key(ec_key)
    assert caught.value.reason == "key"
    with pytest.raises(SignatureError, match="not a PEM public key"):
        signing.load_public_key(ec_key)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        signing.load_private_key(tmp_path / "missing.pem")


# -- certificates ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city")
    pki.init_ca(root / "ca", name="Test City CA", days=30)
    authority = pki.load_authority(root / "ca")
    pki.issue_unit("pole-17", authority, root / "pole-17", days=10)
    pki.issue_unit("pole-18", authority, root / "pole-18", days=10)
    pki.issue_client("analyst-3", authority, root / "clients", days=10, signing=True)
    pki.init_ca(root / "rogue", name="Test City CA", days=30)  # same name, other key
    pki.issue_unit("pole-17", pki.load_authority(root / "rogue"), root / "rogue-17", days=10)
    return root


def _unit_event(city: Path, unit: str = "pole-17", directory: str | None = None) -> dict[str, Any]:
    key = signing.load_private_key(city / (directory or unit) / "signing.pem")
    return signing.sign(event(unit_id=unit), key)


def test_certificate_chain_round_trip(city: Path) -> None:
    cert = signing.load_certificate(city / "pole-17" / "signing.crt")
    ca = signing.load_certificate(city / "ca" / "ca.crt")
    signing.verify_with_certificate(_unit_event(city), cert, ca)
    signing.verify(_unit_event(city), cert)


def cert_failure(payload: dict[str, Any], cert_path: Path, ca_path: Path | None, **kw: Any) -> SignatureError:
    cert = signing.load_certificate(cert_path)
    ca = signing.load_certificate(ca_path) if ca_path else None
    with pytest.raises(SignatureError) as caught:
        signing.verify_with_certificate(payload, cert, ca, **kw)
    return caught.value


def test_wrong_ca_fails(city: Path) -> None:
    rogue = _unit_event(city, directory="rogue-17")
    error = cert_failure(rogue, city / "rogue-17" / "signing.crt", city / "ca" / "ca.crt")
    assert error.reason == "cert" and "was not issued by" in str(error)


def test_certificate_of_another_unit_fails(city: Path) -> None:
    error = cert_failure(_unit_event(city), city / "pole-18" / "signing.crt", city / "ca" / "ca.crt")
    assert error.reason == "cert" and "not issued to 'pole-17'" in str(error)
    # the unit_id in the message is what the certificate must name, even when the key matches
    renamed = signing.sign(event(unit_id="pole-18"), signing.load_private_key(city / "pole-17" / "signing.pem"))
    assert cert_failure(renamed, city / "pole-17" / "signing.crt", None).reason == "cert"


def test_validity_is_checked_at_the_given_time(city: Path) -> None:
    later = datetime.now(UTC) + timedelta(days=11)
    error = cert_failure(_unit_event(city), city / "pole-17" / "signing.crt", city / "ca" / "ca.crt", at=later)
    assert error.reason == "cert" and "valid" in str(error)
    earlier = datetime.now(UTC) - timedelta(days=1)
    assert cert_failure(_unit_event(city), city / "pole-17" / "signing.crt", city / "ca" / "ca.crt", at=earlier)


def test_a_tls_certificate_is_not_a_signing_certificate(city: Path) -> None:
    error = cert_failure(_unit_event(city), city / "pole-17" / "tls.crt", city / "ca" / "ca.crt")
    assert error.reason == "key"


def test_a_leaf_is_not_a_ca(city: Path) -> None:
    error = cert_failure(_unit_event(city), city / "pole-17" / "signing.crt", city / "pole-18" / "signing.crt")
    assert "is not a CA certificate" in str(error)


def test_tampered_event_fails_even_with_a_good_chain(city: Path) -> None:
    message = _unit_event(city)
    message["rounds"] = 9
    error = cert_failure(message, city / "pole-17" / "signing.crt", city / "ca" / "ca.crt")
    assert error.reason == "bad"


def test_reviewer_signs_a_reclassification(city: Path) -> None:
    from edge.transport.messages import build_reclassification

    key = signing.load_private_key(city / "clients" / "analyst-3.signing.pem")
    message = signing.sign(
        build_reclassification(
            reclass_id="9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
            event_id=event()["event_id"],
            new_type="not-gunshot",
            reason="fireworks",
            ts_ns=1,
            reviewer="analyst-3",
        ),
        key,
    )
    schema.validate("reclassification", message)
    cert = signing.load_certificate(city / "clients" / "analyst-3.signing.crt")
    signing.verify_with_certificate(message, cert, signing.load_certificate(city / "ca" / "ca.crt"))
