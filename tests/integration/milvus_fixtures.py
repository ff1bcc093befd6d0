"""A real Milvus standalone server for the session (production-mode tests); import the fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from driftwise_testing.milvus_server import LocalMilvusServer


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMilvusServer]:
    """Its own fresh data directory, so no run or other server shares its collections."""
    server = LocalMilvusServer(tmp_path_factory.mktemp("milvus-server"), stop_timeout_s=2.0)
    server.start()
    yield server
    server.stop()
