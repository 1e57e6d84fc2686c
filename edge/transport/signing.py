"""Ed25519 signatures over canonical JSON, signing-key files and the unit certificate check.

Canonical form (docs/mqtt.md, "Signatures"): the message without its ``signature`` field, serialised as UTF-8 JSON
with object keys sorted by code point, no whitespace outside strings, non-ASCII characters as themselves (only
``"``, ``\\`` and control characters escaped), integers as decimal digits and floats as Python's ``repr`` (the
shortest text that reads back to the same double); NaN and infinities are refused.

A key's id is the first 16 hex digits of the SHA-256 of its raw 32-byte public key. A unit's key lives in
``/etc/polewatch/keys/signing.pem`` (PKCS#8 PEM, mode 0600); its certificate, issued by the city CA
(``python -m tools.pki``), has the unit id as common name.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from edge.errors import MessageError, SignatureError

log = logging.getLogger(__name__)

ALG: Final = "ed25519"
SIGNATURE_FIELD: Final = "signature"
DEFAULT_SIGNING_KEY: Final = Path("/etc/polewatch/keys/signing.pem")
DEFAULT_SIGNING_CERT: Final = Path("/etc/polewatch/keys/signing.crt")
SECRET_MODE: Final = 0o600
PUBLIC_MODE: Final = 0o644


# -- canonical JSON ---------------------------------------------------------------------------------------------


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: ``payload`` without ``signature``, in canonical form (module docstring)."""
    body = {key: value for key, value in payload.items() if key != SIGNATURE_FIELD}
    _check_json(body, "$", _label(payload))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MessageError(_label(payload), "$", f"text is not valid Unicode ({exc.reason})") from None


def _check_json(value: Any, path: str, kind: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MessageError(kind, path, f"object key {key!r} is not a string")
            _check_json(item, f"{path}.{key}", kind)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", kind)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MessageError(kind, path, f"{value!r} has no JSON form (NaN and infinities are refused)")
    elif value is not None and not isinstance(value, str | int):
        raise MessageError(kind, path, f"{type(value).__name__} is not a JSON type")


def _label(payload: Mapping[str, Any]) -> str:
    declared = payload.get("schema")
    return declared.split("/")[1] if isinstance(declared, str) and declared.count("/") == 2 else "unknown"


# -- sign and verify --------------------------------------------------------------------------------------------


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(payload: Mapping[str, Any], key: Ed25519PrivateKey, key_id: str | None = None) -> dict[str, Any]:
    """A copy of ``payload`` with ``signature`` = ``{alg, key_id, value}`` over its canonical JSON.

    An existing ``signature`` is replaced. ``key_id``, if given, must be the id of ``key`` (a check against
    mixing up key files); the signature always carries the key's own id.
    """
    kid = public_key_id(key.public_key())
    if key_id is not None and key_id != kid:
        raise ValueError(f"key id {key_id!r} is not the id of the signing key ({kid})")
    value = key.sign(canonical_json(payload))
    signed = {k: copy.deepcopy(v) for k, v in payload.items() if k != SIGNATURE_FIELD}
    signed[SIGNATURE_FIELD] = {"alg": ALG, "key_id": kid, "value": base64.b64encode(value).decode("ascii")}
    return signed


def verify(payload: Mapping[str, Any], public_key: Ed25519PublicKey | x509.Certificate) -> None:
    """Raise :class:`SignatureError` unless ``payload`` carries a valid signature by ``public_key``.

    A certificate stands for its public key only; check the certificate itself with :func:`check_certificate`.
    """
    if isinstance(public_key, x509.Certificate):
        public_key = certificate_key(public_key)
    signature = payload.get(SIGNATURE_FIELD)
    if not isinstance(signature, Mapping):
        raise SignatureError("missing", "the message carries no signature")
    if signature.get("alg") != ALG:
        raise SignatureError("alg", f"signature algorithm {signature.get('alg')!r} is not {ALG!r}")
    expected = public_key_id(public_key)
    if signature.get("key_id") != expected:
        raise SignatureError(
            "key_id", f"signed with key {signature.get('key_id')!r}, but the key given is {expected!r}"
        )
    encoded = signature.get("value")
    try:
        raw = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != 64:
        raise SignatureError("malformed", "signature value is not 64 bytes of base64")
    try:
        body = canonical_json(payload)
    except MessageError as exc:
        raise SignatureError("malformed", f"no canonical form: {exc}") from None
    try:
        public_key.verify(raw, body)
    except InvalidSignature:
        raise SignatureError(
            "bad", "signature does not match the content: the message was altered after signing"
        ) from None


def signer_name(payload: Mapping[str, Any]) -> str | None:
    """Who claims to have signed: ``unit_id``, else ``reviewer`` (reclassifications by a person)."""
    for field in ("unit_id", "reviewer"):
        name = payload.get(field)
        if isinstance(name, str):
            return name
    return None


# -- certificates -----------------------------------------------------------------------------------------------


def certificate_key(cert: x509.Certificate) -> Ed25519PublicKey:
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            "key", f"certificate {_subject(cert)!r} holds a {type(key).__name__}, not an Ed25519 signing key"
        )
    return key


def certificate_names(cert: x509.Certificate) -> set[str]:
    """The certificate's common names and DNS subject alternative names."""
    names = {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    return names | set(san.get_values_for_type(x509.DNSName))


def check_certificate(
    cert: x509.Certificate, ca: x509.Certificate | None = None, *, name: str | None = None, at: datetime | None = None
) -> None:
    """Raise :class:`SignatureError` (reason ``cert``) unless ``cert`` names ``name`` (CN or DNS SAN) and, with a
    ``ca``, was issued by it (signature), and both are valid at ``at`` (default: now)."""
    if name is not None and name not in certificate_names(cert):
        raise SignatureError("cert", f"certificate {_subject(cert)!r} is not issued to {name!r}")
    if ca is None:
        return
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise SignatureError("cert", f"{_subject(ca)!r} is not a CA certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        why = exc if str(exc) else "its signature does not check out"
        problem = f"certificate {_subject(cert)!r} was not issued by {_subject(ca)!r}: {why}"
        raise SignatureError("cert", problem) from None
    when = at or datetime.now(UTC)
    for each in (cert, ca):
        if not each.not_valid_before_utc <= when <= each.not_valid_after_utc:
            raise SignatureError(
                "cert",
                f"certificate {_subject(each)!r} is valid {each.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                f"{each.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not at {when:%Y-%m-%d %H:%M} UTC",
            )


def verify_with_certificate(
    payload: Mapping[str, Any],
    cert: x509.Certificate,
    ca: x509.Certificate | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Verify ``payload`` with the signing certificate of its issuer (the ``unit_id`` or ``reviewer`` it names),
    checked against the CA when one is given."""
    check_certificate(cert, ca, name=signer_name(payload), at=at)
    verify(payload, cert)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


# -- key and certificate files ----------------------------------------------------------------------------------


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Any) -> bytes:
    """Any private key as unencrypted PKCS#8 PEM."""
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def save_private_key(key: Ed25519PrivateKey, path: Path, *, overwrite: bool = False) -> None:
    """Write ``key`` as PKCS#8 PEM, mode 0600 (refuses to replace a file unless ``overwrite``)."""
    write_file(path, private_key_pem(key), mode=SECRET_MODE, overwrite=overwrite)


def save_public_key(key: Ed25519PublicKey, path: Path, *, overwrite: bool = False) -> None:
    write_file(path, public_key_pem(key), mode=PUBLIC_MODE, overwrite=overwrite)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in a PKCS#8 PEM file (unencrypted); warns when others may read it."""
    data = _read(path, "signing key")
    if os.stat(path).st_mode & 0o077:
        log.warning("signing key %s is readable by other users: chmod 600 it", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError("key", f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("key", f"{path} holds a {type(key).__name__}, not an Ed25519 signing key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (``-----BEGIN PUBLIC KEY-----``)."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SignatureError("key", f"{path} is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("key", f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def load_certificate(path: Path) -> x509.Certificate:
    """An X.509 certificate from a PEM or DER file."""
    data = _read(path, "certificate")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise SignatureError("cert", f"{path} is not an X.509 certificate ({exc})") from None


def write_file(path: Path, data: bytes, *, mode: int, overwrite: bool = False) -> None:
    """Write ``data`` atomically (temporary file, then rename) with permissions ``mode`` from the start."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
