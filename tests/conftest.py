"""Shared fixtures: real mosquitto brokers (plain, persistent, mutual TLS with the shipped ACL) and a test PKI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.transport.local_broker import Broker, free_port, plain_conf
from tests.broker import tls_conf
from tests.certs import ThrowawayPki

TEST_PREFIX = "polewatch/v1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A plain anonymous mosquitto on a free port, without persistence."""
    port = free_port()
    running = Broker(plain_conf(tmp_path / "broker", port), port)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Broker]:
    """Like ``broker`` but sessions survive a restart, so a persistent subscriber misses nothing."""
    port = free_port()
    running = Broker(plain_conf(tmp_path / "broker", port, persistence=True), port)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPki:
    return ThrowawayPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_broker(tmp_path: Path, pki: ThrowawayPki) -> Iterator[Broker]:
    """mosquitto with the shipped config: mutual TLS, certificate CN as user name, the shipped ACL."""
    port = free_port()
    running = Broker(tls_conf(tmp_path / "tls-broker", port, pki.root, TEST_PREFIX), port)
    running.start()
    yield running
    running.stop()
