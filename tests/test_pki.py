"""``python -m tools.pki``: files and modes, refusal to overwrite, certificate contents, and a real mutual-TLS
broker that accepts the certificates and enforces the ACL by their common names."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

from edge.transport import signing
from edge.transport.local_broker import Broker, free_port
from tests.broker import Subscriber, tls_conf
from tests.certs import ClientFiles
from tests.test_schemas import event
from tools import pki

PREFIX = "polewatch/v1"

HAVE_MOSQUITTO = shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def city(tmp_path: Path) -> Path:
    ca = tmp_path / "ca"
    assert pki.main(["init-ca", "--out", str(ca), "--name", "Test City CA", "--days", "30"]) == 0
    assert pki.main(["issue-unit", "pole-17", "--ca", str(ca), "--out", str(tmp_path / "pole-17")]) == 0
    assert pki.main(["issue-unit", "pole-18", "--ca", str(ca), "--out", str(tmp_path / "pole-18")]) == 0
    assert pki.main(["issue-server", "broker.example.org", "--ca", str(ca)]) == 0
    assert pki.main(["issue-client", "central", "--ca", str(ca)]) == 0
    return tmp_path


def cert(path: Path) -> x509.Certificate:
    return signing.load_certificate(path)


def test_files_and_modes(city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = city / "ca"
    assert sorted(p.name for p in ca.iterdir()) == [
        "ca.crt",
        "ca.key",
        "central.crt",
        "central.key",
        "server.crt",
        "server.key",
    ]
    unit = city / "pole-17"
    assert sorted(p.name for p in unit.iterdir()) == ["ca.crt", "signing.crt", "signing.pem", "tls.crt", "tls.key"]
    for key in (ca / "ca.key", ca / "server.key", ca / "central.key", unit / "tls.key", unit / "signing.pem"):
        assert mode(key) == 0o600, key
    for crt in (ca / "ca.crt", ca / "server.crt", unit / "tls.crt", unit / "signing.crt", unit / "ca.crt"):
        assert mode(crt) == 0o644, crt
    assert (unit / "ca.crt").read_bytes() == (ca / "ca.crt").read_bytes()
    assert pki.main(["issue-client", "viewer", "--ca", str(ca)]) == 0
    assert capsys.readouterr().out.split() == [str(ca / "viewer.key"), str(ca / "viewer.crt")]


def test_certificate_contents(city: Path) -> None:
    ca = cert(city / "ca" / "ca.crt")
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    tls = cert(city / "pole-17" / "tls.crt")
    assert isinstance(tls.public_key(), ec.EllipticCurvePublicKey)
    assert tls.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pole-17"
    assert ExtendedKeyUsageOID.CLIENT_AUTH in tls.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    signing_cert = cert(city / "pole-17" / "signing.crt")
    assert isinstance(signing_cert.public_key(), Ed25519PublicKey)
    assert signing.certificate_names(signing_cert) == {"pole-17"}
    server = cert(city / "ca" / "server.crt")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.org", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for leaf in (tls, signing_cert, server):
        leaf.verify_directly_issued_by(ca)
        assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    signing.check_certificate(signing_cert, ca, name="pole-17")


def test_the_unit_signing_key_matches_its_certificate(city: Path) -> None:
    key = signing.load_private_key(city / "pole-17" / "signing.pem")
    message = signing.sign(event(), key)
    signing.verify_with_certificate(message, cert(city / "pole-17" / "signing.crt"), cert(city / "ca" / "ca.crt"))


def test_refuses_to_overwrite_without_force(city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = city / "ca"
    before = (ca / "ca.key").read_bytes()
    assert pki.main(["init-ca", "--out", str(ca)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (ca / "ca.key").read_bytes() == before
    unit_before = (city / "pole-17" / "signing.pem").read_bytes()
    assert pki.main(["issue-unit", "pole-17", "--ca", str(ca), "--out", str(city / "pole-17")]) == 1
    assert (city / "pole-17" / "signing.pem").read_bytes() == unit_before
    assert pki.main(["issue-unit", "pole-17", "--ca", str(ca), "--out", str(city / "pole-17"), "--force"]) == 0
    assert (city / "pole-17" / "signing.pem").read_bytes() != unit_before
    assert mode(city / "pole-17" / "signing.pem") == 0o600


def test_partial_existing_output_writes_nothing(city: Path) -> None:
    out = city / "pole-19"
    out.mkdir()
    (out / "tls.crt").write_text("keep me")
    assert pki.main(["issue-unit", "pole-19", "--ca", str(city / "ca"), "--out", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["tls.crt"]


@pytest.mark.parametrize("unit", ["central", "incident", "reclassification", "Pole_1", ""])
def test_refuses_reserved_and_invalid_unit_ids(city: Path, unit: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert pki.main(["issue-unit", unit, "--ca", str(city / "ca"), "--out", str(city / "x")]) == 1
    assert "unit id" in capsys.readouterr().err
    assert not (city / "x").exists()


def test_missing_ca_and_bad_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pki.main(["issue-client", "central", "--ca", str(tmp_path / "nope")]) == 1
    assert "nope" in capsys.readouterr().err
    assert pki.main(["init-ca", "--out", str(tmp_path / "ca"), "--days", "0"]) == 1


def test_client_with_signing_key(city: Path) -> None:
    assert pki.main(["issue-client", "analyst-3", "--ca", str(city / "ca"), "--out", str(city / "c"), "--signing"]) == 0
    names = sorted(p.name for p in (city / "c").iterdir())
    assert names == ["analyst-3.crt", "analyst-3.key", "analyst-3.signing.crt", "analyst-3.signing.pem"]
    signing.check_certificate(
        cert(city / "c" / "analyst-3.signing.crt"), cert(city / "ca" / "ca.crt"), name="analyst-3"
    )


# -- a real broker with the shipped config accepts these certificates --------------------------------------------


class UnitClient:
    """MQTT 5 client that records the PUBACK reason code of each publish."""

    def __init__(self, port: int, files: ClientFiles, client_id: str) -> None:
        self.acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set(str(files.ca_file), str(files.cert_file), str(files.key_file))
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.connect("localhost", port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(5)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._acked:
            self.acks[mid] = reason
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes) -> Any:
        info = self.client.publish(topic, payload, qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.acks, timeout=5)
            return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(), reason="mosquitto is not installed"
)
def test_mutual_tls_broker_accepts_the_pki_and_enforces_the_acl(city: Path, tmp_path: Path) -> None:
    certs = city / "certs"
    certs.mkdir()
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(city / "ca" / name, certs / name)
    port = free_port()
    broker = Broker(tls_conf(tmp_path / "broker", port, certs, PREFIX), port)
    broker.start()
    central = unit = None
    try:
        ca_file = city / "ca" / "ca.crt"
        central_files = ClientFiles(ca_file, city / "ca" / "central.crt", city / "ca" / "central.key")
        central = Subscriber(port, [f"{PREFIX}/#"], client_id="central-test", tls=central_files)
        unit_dir = city / "pole-17"
        unit = UnitClient(port, ClientFiles(ca_file, unit_dir / "tls.crt", unit_dir / "tls.key"), "any-client-id")
        key = signing.load_private_key(unit_dir / "signing.pem")
        payload = signing.canonical_json(signing.sign(event(), key))
        assert not unit.publish(f"{PREFIX}/pole-17/event", payload).is_failure
        denied = unit.publish(f"{PREFIX}/pole-18/event", payload)
        assert denied.is_failure and "authori" in str(denied).lower()
        assert central.wait_for(lambda got: any(m.topic.endswith("/pole-17/event") for m in got))
        assert all(not m.topic.startswith(f"{PREFIX}/pole-18/") for m in central.all())
    finally:
        if unit:
            unit.close()
        if central:
            central.close()
        broker.stop()
