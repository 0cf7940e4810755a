"""Shared test setup: offline defaults, and no socket may leave the machine."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from grounded import offline

offline.configure()

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS, i.e. the network


class NetworkBlocked(OSError):
    pass


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to reach the network: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(index folder, docs folder): tests/data/generate/corpus ingested once per session (read-only)."""
    from grounded.ingestion import ingest

    root = tmp_path_factory.mktemp("gen-index")
    docs = root / "docs"
    docs.mkdir()
    for p in (Path(__file__).parent / "data" / "generate" / "corpus").glob("*.txt"):
        (docs / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    ingest([docs], index=root / "index", chunk_tokens=64, overlap_tokens=8)
    return root / "index", docs


def pytest_configure(config: pytest.Config) -> None:
    # Every test runs as an air-gapped user would: only loopback is reachable.
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
