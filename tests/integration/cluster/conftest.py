"""Real nats-server processes for the cluster-mode building blocks (event log, leases)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from nats.aio.client import Client as NatsClient

from driftwise.cluster.event_stream import connect
from driftwise_testing.nats_cluster import LocalNatsCluster


@pytest.fixture(scope="session")
def nats_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsCluster]:
    """One JetStream node for the session; tests use their own stream and bucket names."""
    with LocalNatsCluster(tmp_path_factory.mktemp("nats-1")) as cluster:
        yield cluster


@pytest.fixture
def nats_trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsCluster]:
    """A fresh 3-node cluster (a test may kill nodes)."""
    with LocalNatsCluster(tmp_path_factory.mktemp("nats-3"), nodes=3) as cluster:
        yield cluster


@pytest.fixture
async def nc(nats_node: LocalNatsCluster) -> AsyncIterator[NatsClient]:
    client = await connect(nats_node.client_urls)
    yield client
    await client.close()
