"""Fixtures: one live all-in-one Driftwise server for the session, with a small catalogue, and
scripted gRPC servers per test.

Live tests skip when the server package is not importable by DRIFTWISE_SERVER_PYTHON (default: this
interpreter), unless DRIFTWISE_CLIENT_REQUIRE_LIVE=1 (scripts/clients/python.sh sets it): then they
fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from client_test_support import REQUIRE_LIVE, LiveServer, ScriptedServer, catalogue, server_available

from driftwise_client import DriftwiseClient, Item


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`driftwise serve` with its own local Triton and Milvus Lite in a temporary directory."""
    if not server_available():
        if REQUIRE_LIVE:
            pytest.fail("the driftwise server package is not importable (DRIFTWISE_SERVER_PYTHON)")
        pytest.skip("the driftwise server package is not importable: live tests skipped")
    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def items(live_server: LiveServer) -> list[Item]:
    """The catalogue, upserted once through the client."""
    catalogue_items = catalogue()
    with DriftwiseClient(live_server.target, timeout=120) as client:
        response = client.upsert_items(catalogue_items)
    assert response.upserted_count == len(catalogue_items)
    return catalogue_items


@pytest.fixture
def target(live_server: LiveServer, items: list[Item]) -> str:
    """The live server's address, once its catalogue is loaded."""
    return live_server.target


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client_src() -> Path:
    return Path(__file__).resolve().parents[1] / "src" / "driftwise_client"
