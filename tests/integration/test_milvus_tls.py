"""Driftwise -> Milvus over mutual TLS, against a real Milvus 2.3.5 standalone (tlsMode 2).

Certificates are made at run time by scripts/dev_certs.sh in a temporary directory. One server for
the module (~15-30 s to start). A refused handshake (no client certificate, plaintext) cannot be
told from an unreachable server at the gRPC level: opening the store raises UnavailableError
after the connect timeout, naming the TLS settings to check.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from driftwise.errors import StartupError, UnavailableError
from driftwise.storage.milvus_tls import MilvusTls
from driftwise.storage.vector_store import MilvusVectorStore, StoredItem
from driftwise_testing.milvus_server import LocalMilvusServer, MilvusServerTls

pytestmark = pytest.mark.integration

DIM = 8
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("milvus-certs")
    subprocess.run([str(REPO / "scripts" / "dev_certs.sh"), str(directory)], check=True, capture_output=True)
    return directory


@pytest.fixture(scope="module")
def mutual(certs: Path) -> MilvusTls:
    return MilvusTls(certs / "ca.crt", certs / "client.crt", certs / "client.key")


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certs: Path, mutual: MilvusTls
) -> Iterator[LocalMilvusServer]:
    server = LocalMilvusServer(
        tmp_path_factory.mktemp("milvus-tls-server"),
        stop_timeout_s=2.0,
        tls=MilvusServerTls(
            certs / "server.crt",
            certs / "server.key",
            client_ca_file=certs / "ca.crt",
            client=tuple(mutual.client_kwargs().items()),
        ),
    )
    server.start()
    yield server
    server.stop()


def store(server: LocalMilvusServer, tls: MilvusTls | None) -> MilvusVectorStore:
    return MilvusVectorStore(
        server.uri, DIM, token=server.token, index_type="HNSW", connect_timeout_seconds=2.0, tls=tls
    )


async def test_mutual_tls_store_upserts_and_searches(
    tls_server: LocalMilvusServer, mutual: MilvusTls
) -> None:
    vectors = store(tls_server, mutual)
    await vectors.open()
    try:
        rng = np.random.default_rng(3)
        items = []
        for k in range(5):
            v = rng.normal(size=DIM).astype(np.float32)
            items.append(StoredItem(f"i{k}", f"title {k}", "c", 1000 + k, v / np.linalg.norm(v), {}))
        await vectors.upsert_items(items)
        hits = await vectors.search_ids(np.stack([items[2].vector]), limit=3, consistency="Strong")
        assert hits[0][0][0] == "i2"
    finally:
        await vectors.close()


@pytest.mark.parametrize(
    "client", ["one-way (no client certificate)", "plaintext", "another CA's certificate"]
)
async def test_without_a_good_client_certificate_opening_fails(
    tls_server: LocalMilvusServer, certs: Path, tmp_path: Path, client: str
) -> None:
    hint = "check milvus.tls_\\* against its certificates"
    if client.startswith("one-way"):
        tls: MilvusTls | None = MilvusTls(certs / "ca.crt")
        hint = "tls_cert_file and tls_key_file"
    elif client == "plaintext":
        tls, hint = None, "set milvus.tls_ca_file"
    else:
        subprocess.run(
            [str(REPO / "scripts" / "dev_certs.sh"), str(tmp_path)], check=True, capture_output=True
        )
        tls = MilvusTls(certs / "ca.crt", tmp_path / "client.crt", tmp_path / "client.key")
    vectors = store(tls_server, tls)
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=f"cannot connect to Milvus at .*{hint}"):
        await vectors.open()
    assert time.monotonic() - started < 10  # the connect timeout (2 s), not pymilvus's retries
    await vectors.close()


async def test_one_way_tls(tmp_path: Path, certs: Path) -> None:
    """tlsMode 1: the CA alone verifies the server; no client certificate asked for."""
    one_way = MilvusTls(certs / "ca.crt", server_name="localhost")
    server = LocalMilvusServer(
        tmp_path / "milvus",
        stop_timeout_s=2.0,
        tls=MilvusServerTls(
            certs / "server.crt", certs / "server.key", client=tuple(one_way.client_kwargs().items())
        ),
    )
    server.start()
    try:
        vectors = store(server, one_way)
        await vectors.open()
        await vectors.close()
        with pytest.raises(UnavailableError, match=r"set milvus\.tls_ca_file"):
            await store(server, None).open()
    finally:
        server.stop()


async def test_bad_files_refused_before_connecting(certs: Path) -> None:
    """StartupError naming the setting, before any connection (no server at this port)."""

    def unreachable(tls: MilvusTls) -> MilvusVectorStore:
        return MilvusVectorStore("http://127.0.0.1:1", DIM, connect_timeout_seconds=2.0, tls=tls)

    with pytest.raises(StartupError, match=r"milvus\.tls_ca_file .*nope\.crt: No such file"):
        await unreachable(MilvusTls(certs / "nope.crt")).open()
    mismatched = MilvusTls(certs / "ca.crt", certs / "client.crt", certs / "server.key")
    with pytest.raises(StartupError, match=r"milvus\.tls_cert_file / milvus\.tls_key_file: not a PEM"):
        await unreachable(mismatched).open()
