"""City PKI for polewatch: the CA, unit certificates and signing keys, the broker's and subscribers' certificates.

Usage (from the repository root; ``cryptography`` only, no openssl)::

    python -m tools.pki init-ca --out ca/ [--name "Example City polewatch CA"] [--days 3650]
    python -m tools.pki issue-unit pole-17 --ca ca/ --out units/pole-17/ [--days 1825]
    python -m tools.pki issue-server broker.example.org --ca ca/ [--out DIR] [--dns NAME] [--ip ADDR]
    python -m tools.broker.render --certs ca/ --out broker/   # uses ca.crt, server.crt, server.key
    python -m tools.pki issue-client central-1 --ca ca/ [--out DIR] [--signing]

Every command refuses to replace an existing file unless ``--force`` is given. Private keys are written with
mode 0600, certificates 0644.

* The CA key is ECDSA P-256 (what mosquitto/OpenSSL handle everywhere): ``ca.key``, ``ca.crt``.
* The broker gets ``server.key`` and ``server.crt`` (what ``tools/broker/render.py`` expects beside ``ca.crt``).
  Unit ids ``central``, ``incident`` and ``reclassification`` are refused: the broker's ACL gives them other rights.
* TLS certificates (unit and subscriber clients, broker) carry ECDSA P-256 keys; a client's common name is its MQTT
  user name (mosquitto ``use_identity_as_username``), so a unit's is its unit id.
* A unit (and, with ``--signing``, a reviewer) also gets an Ed25519 key that signs its messages and a certificate
  for it issued by the same CA: ``signing.pem`` and ``signing.crt``, checked by ``polewatch verify --cert --ca``.

A unit's directory holds ``tls.key``, ``tls.crt``, ``signing.pem``, ``signing.crt`` and ``ca.crt``: copy it to
``/etc/polewatch/keys/`` on the unit.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.errors import SignatureError
from edge.transport.signing import PUBLIC_MODE, SECRET_MODE, load_certificate, private_key_pem, write_file
from edge.transport.topics import RESERVED_UNIT_IDS, UNIT_ID

CA_KEY: Final = "ca.key"
CA_CERT: Final = "ca.crt"
SERVER_KEY: Final = "server.key"
SERVER_CERT: Final = "server.crt"
"""The names ``tools/broker/render.py`` expects beside ``ca.crt``."""
"""User names and topic levels with another meaning: a unit with such a CN would get the rights of central, or
(``{prefix}/incident/#`` matches ``{prefix}/incident``) could publish fake incidents."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""Certificates start this long before now, so a unit whose clock is a little behind accepts them."""

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1

IssuerKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Authority:
    key: IssuerKey
    cert: x509.Certificate


def init_ca(out: Path, *, name: str, days: int, force: bool = False) -> list[Path]:
    """Create the city CA in ``out``; returns the files written."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = {out / CA_KEY: (private_key_pem(key), SECRET_MODE), out / CA_CERT: (_pem(cert), PUBLIC_MODE)}
    return _write_all(files, force)


def load_authority(ca_dir: Path) -> Authority:
    key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError("key", f"{ca_dir / CA_KEY} is not an ECDSA CA key")
    return Authority(key, load_certificate(ca_dir / CA_CERT))


def issue_unit(unit_id: str, ca: Authority, out: Path, *, days: int, force: bool = False) -> list[Path]:
    """TLS client certificate (CN = unit id) and Ed25519 signing key + certificate for one unit."""
    if not UNIT_ID.fullmatch(unit_id):
        raise ValueError(f"unit id {unit_id!r} must match [a-z0-9-]{{1,64}}")
    if unit_id in RESERVED_UNIT_IDS:
        raise ValueError(f"unit id {unit_id!r} is reserved ({', '.join(sorted(RESERVED_UNIT_IDS))})")
    tls_key = ec.generate_private_key(ec.SECP256R1())
    signing_key = Ed25519PrivateKey.generate()
    tls_cert = _leaf(ca, unit_id, tls_key.public_key(), days, client=True, dns=[unit_id])
    signing_cert = _leaf(ca, unit_id, signing_key.public_key(), days, signing=True, dns=[unit_id])
    files = {
        out / "tls.key": (private_key_pem(tls_key), SECRET_MODE),
        out / "tls.crt": (_pem(tls_cert), PUBLIC_MODE),
        out / "signing.pem": (private_key_pem(signing_key), SECRET_MODE),
        out / "signing.crt": (_pem(signing_cert), PUBLIC_MODE),
        out / CA_CERT: (_pem(ca.cert), PUBLIC_MODE),
    }
    return _write_all(files, force)


def issue_server(
    hostname: str,
    ca: Authority,
    out: Path,
    *,
    days: int,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    force: bool = False,
) -> list[Path]:
    """Broker certificate for ``hostname``, also valid for localhost and 127.0.0.1 (local tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dict.fromkeys([hostname, "localhost", *dns]))
    addresses = list(dict.fromkeys(["127.0.0.1", *ips]))
    cert = _leaf(ca, hostname, key.public_key(), days, server=True, dns=names, ips=addresses)
    files = {
        out / SERVER_KEY: (private_key_pem(key), SECRET_MODE),
        out / SERVER_CERT: (_pem(cert), PUBLIC_MODE),
    }
    return _write_all(files, force)


def issue_client(name: str, ca: Authority, out: Path, *, days: int, signing: bool, force: bool = False) -> list[Path]:
    """TLS client certificate for a central subscriber (CN = ``name``), plus an Ed25519 signing key and certificate
    with ``signing`` (for reviewers who publish reclassifications)."""
    if not UNIT_ID.fullmatch(name):
        raise ValueError(f"client name {name!r} must match [a-z0-9-]{{1,64}} (it becomes the MQTT user name)")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(ca, name, key.public_key(), days, client=True, dns=[name])
    files = {out / f"{name}.key": (private_key_pem(key), SECRET_MODE), out / f"{name}.crt": (_pem(cert), PUBLIC_MODE)}
    if signing:
        signing_key = Ed25519PrivateKey.generate()
        signing_cert = _leaf(ca, name, signing_key.public_key(), days, signing=True, dns=[name])
        files[out / f"{name}.signing.pem"] = (private_key_pem(signing_key), SECRET_MODE)
        files[out / f"{name}.signing.crt"] = (_pem(signing_cert), PUBLIC_MODE)
    return _write_all(files, force)


def _leaf(
    ca: Authority,
    common_name: str,
    public_key: CertificatePublicKeyTypes,
    days: int,
    *,
    client: bool = False,
    server: bool = False,
    signing: bool = False,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> x509.Certificate:
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(tls=client or server, signing=signing), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] * client + [ExtendedKeyUsageOID.SERVER_AUTH] * server
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _key_usage(*, cert_sign: bool = False, tls: bool = False, signing: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=tls or signing,
        content_commitment=signing,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=tls,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_all(files: dict[Path, tuple[bytes, int]], force: bool) -> list[Path]:
    existing = [str(path) for path in files if path.exists()]
    if existing and not force:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    for path, (data, mode) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, data, mode=mode, overwrite=force)
    return list(files)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.pki", description="polewatch city PKI")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    ca = sub.add_parser("init-ca", help="create the city CA (ECDSA P-256)")
    ca.add_argument("--out", type=Path, required=True, metavar="DIR")
    ca.add_argument("--name", default="polewatch city CA", help="CA common name")
    ca.add_argument("--days", type=int, default=3650, help="validity in days (default: 3650)")

    unit = sub.add_parser("issue-unit", help="TLS client certificate and Ed25519 signing key + certificate of a unit")
    unit.add_argument("unit_id", metavar="UNIT_ID")
    unit.add_argument("--out", type=Path, required=True, metavar="DIR", help="the unit's key directory")
    unit.add_argument("--days", type=int, default=1825, help="validity in days (default: 1825)")

    server = sub.add_parser("issue-server", help="broker certificate (SAN: HOSTNAME, localhost, 127.0.0.1)")
    server.add_argument("hostname", metavar="HOSTNAME")
    server.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="where server.key and server.crt go (default: the CA dir)"
    )
    server.add_argument("--dns", action="append", default=[], metavar="NAME", help="another DNS name (repeatable)")
    server.add_argument("--ip", action="append", default=[], metavar="ADDR", help="another IP address (repeatable)")
    server.add_argument("--days", type=int, default=825, help="validity in days (default: 825)")

    client = sub.add_parser("issue-client", help="TLS client certificate of a central subscriber")
    client.add_argument("name", metavar="NAME")
    client.add_argument("--out", type=Path, default=None, metavar="DIR", help="default: the CA directory")
    client.add_argument("--signing", action="store_true", help="also an Ed25519 signing key + certificate")
    client.add_argument("--days", type=int, default=825, help="validity in days (default: 825)")

    for each in (unit, server, client):
        each.add_argument("--ca", type=Path, required=True, metavar="DIR", help="directory of ca.key and ca.crt")
    for each in (ca, unit, server, client):
        each.add_argument("--force", action="store_true", help="replace existing files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.days < 1:
        print("pki: --days must be at least 1", file=sys.stderr)
        return EXIT_FAILURE
    try:
        if args.action == "init-ca":
            written = init_ca(args.out, name=args.name, days=args.days, force=args.force)
        else:
            authority = load_authority(args.ca)
            if args.action == "issue-unit":
                written = issue_unit(args.unit_id, authority, args.out, days=args.days, force=args.force)
            elif args.action == "issue-server":
                out = args.out or args.ca
                written = issue_server(
                    args.hostname, authority, out, days=args.days, dns=args.dns, ips=args.ip, force=args.force
                )
            else:
                out = args.out or args.ca
                written = issue_client(
                    args.name, authority, out, days=args.days, signing=args.signing, force=args.force
                )
    except (OSError, ValueError) as exc:
        print(f"pki: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    for path in written:
        print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
