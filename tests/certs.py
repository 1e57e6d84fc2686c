"""Throw-away PKI for broker tests: one CA, a server certificate for localhost, client certificates with CN = unit id.

ECDSA P-256, as the unit PKI will use; only for tests (the real tool is ``tools/pki.py``).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ClientFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


class ThrowawayPki:
    """Files in ``root``: ``ca.crt``, ``server.crt``/``server.key`` and, per client, ``<cn>.crt``/``<cn>.key``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "polewatch test CA")])
        self._ca_name = name
        self._ca_cert = (
            self._builder(name, self._ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_file = root / "ca.crt"
        self.ca_file.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        self._issue(
            "server",
            "localhost",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            ExtendedKeyUsageOID.SERVER_AUTH,
        )

    def client(self, common_name: str) -> ClientFiles:
        """Certificate and key for a client whose CN (the broker's %u) is ``common_name``; made once."""
        cert = self.root / f"{common_name}.crt"
        if not cert.exists():
            self._issue(common_name, common_name, [], ExtendedKeyUsageOID.CLIENT_AUTH)
        return ClientFiles(self.ca_file, cert, self.root / f"{common_name}.key")

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def _issue(self, stem: str, common_name: str, san: list[x509.GeneralName], usage: x509.ObjectIdentifier) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), key.public_key())
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        (self.root / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (self.root / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
