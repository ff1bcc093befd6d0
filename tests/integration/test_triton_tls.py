"""Driftwise -> Triton over mutual TLS, on the real tritonserver binary.

One Triton started with ``--grpc-use-ssl-mutual`` (certificates from scripts/dev_certs.sh, made at
run time): the encoder with the CA and a client certificate from settings.triton.tls_* gets the
same embeddings as the in-process reference; without a client certificate, with one from another
CA, trusting another CA, or in plaintext, the handshake fails and ``connect`` answers
EncoderUnavailableError (what the services map to UNAVAILABLE), never a hang. A JetStream ingest
role (cluster.nats_urls set) reaches it with the same settings, and NATS over TLS."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from driftwise.cluster.event_stream import STREAM, connect
from driftwise.cluster.nats_security import NatsSecurity
from driftwise.inference.encoder import EncoderUnavailableError, TritonTextEncoder
from driftwise.inference.in_process_encoder import InProcessTextEncoder
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.security.tls import triton_channel_credentials
from driftwise.settings import REPO_ROOT, ClusterSettings, ServerSettings, Settings, TritonSettings
from driftwise_client.v1 import ingest_service_pb2
from driftwise_testing.nats_cluster import LocalNatsCluster, NatsServerTls
from tests.integration.support import app_and_client, event, new_user

pytestmark = pytest.mark.integration

TEXTS = ["Toy Story (1995) Adventure|Animation", "Heat (1995) Action|Crime|Thriller", "Amélie (2001)"]


@dataclass
class TlsTriton:
    server: LocalTritonServer
    certs: Path  # ca.crt, server.*, client.* of the CA Triton trusts
    other: Path  # the same from another CA


def _dev_certs(dir_: Path) -> Path:
    subprocess.run([str(REPO_ROOT / "scripts" / "dev_certs.sh"), str(dir_)], check=True, capture_output=True)
    return dir_


@pytest.fixture(scope="module")
def tls_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTriton]:
    certs = _dev_certs(tmp_path_factory.mktemp("pki") / "ca")
    other = _dev_certs(tmp_path_factory.mktemp("pki") / "other")
    server = LocalTritonServer(
        REPO_ROOT / "model_repository",
        models=["text_encoder"],
        log_path=tmp_path_factory.mktemp("triton") / "triton.log",
        extra_args=[
            "--grpc-use-ssl=true",
            "--grpc-use-ssl-mutual=true",
            f"--grpc-server-cert={certs / 'server.crt'}",
            f"--grpc-server-key={certs / 'server.key'}",
            f"--grpc-root-cert={certs / 'ca.crt'}",  # signs the clients' certificates
        ],
        poll_credentials=grpc.ssl_channel_credentials(
            (certs / "ca.crt").read_bytes(),
            (certs / "client.key").read_bytes(),
            (certs / "client.crt").read_bytes(),
        ),
    )
    server.start()
    try:
        yield TlsTriton(server, certs, other)
    finally:
        server.stop()


def _encoder(triton: LocalTritonServer, **tls: Path | str) -> TritonTextEncoder:
    """The encoder as server.py builds it from settings.triton."""
    settings = TritonSettings(url=triton.grpc_url, **tls)  # type: ignore[arg-type]
    credentials, options = triton_channel_credentials(settings)
    return TritonTextEncoder(settings.url, timeout_s=5.0, credentials=credentials, channel_options=options)


async def test_mutual_tls_encodes_like_the_reference(tls_triton: TlsTriton) -> None:
    certs = tls_triton.certs
    encoder = _encoder(
        tls_triton.server,
        tls_ca_file=certs / "ca.crt",
        tls_cert_file=certs / "client.crt",
        tls_key_file=certs / "client.key",
        tls_server_name="localhost",  # in the certificate too, like 127.0.0.1: checks the override
    )
    reference = InProcessTextEncoder()
    try:
        served = await encoder.encode(TEXTS)
        expected = await reference.encode(TEXTS)
    finally:
        await encoder.close()
        await reference.close()
    assert served.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(served, expected, atol=1e-4)


@pytest.mark.parametrize(
    "case", ["plaintext", "no client certificate", "client certificate of another CA", "trusts another CA"]
)
async def test_handshake_refused(tls_triton: TlsTriton, case: str) -> None:
    certs, other = tls_triton.certs, tls_triton.other
    tls: dict[str, Path | str] = {
        "plaintext": {},
        "no client certificate": {"tls_ca_file": certs / "ca.crt"},
        "client certificate of another CA": {
            "tls_ca_file": certs / "ca.crt",
            "tls_cert_file": other / "client.crt",
            "tls_key_file": other / "client.key",
        },
        "trusts another CA": {
            "tls_ca_file": other / "ca.crt",
            "tls_cert_file": certs / "client.crt",
            "tls_key_file": certs / "client.key",
        },
    }[case]
    encoder = _encoder(tls_triton.server, **tls)
    started = time.monotonic()
    try:
        with pytest.raises(EncoderUnavailableError, match="UNAVAILABLE"):
            await encoder.connect()
    finally:
        await encoder.close()
    assert time.monotonic() - started < 5.0  # refused in the handshake, not a deadline


async def test_a_jetstream_ingest_role_encodes_over_mutual_tls(tls_triton: TlsTriton, tmp_path: Path) -> None:
    """The JetStream roles read triton.tls_* too: an ingest replica starts (encoding the topic
    labels through this Triton) and encodes an event's text before publishing it to NATS over TLS."""
    certs = tls_triton.certs
    nats_tls = NatsServerTls(certs / "server.crt", certs / "server.key")
    (tmp_path / "ingest").mkdir()  # the JetStream roles do not make their data_dir
    with LocalNatsCluster(tmp_path / "nats", tls=nats_tls) as nats:
        settings = Settings(
            data_dir=tmp_path / "ingest",  # Milvus Lite in it: items are not what this is about
            server=ServerSettings(port=0, role="ingest"),
            triton=TritonSettings(
                url=tls_triton.server.grpc_url,
                tls_ca_file=certs / "ca.crt",
                tls_cert_file=certs / "client.crt",
                tls_key_file=certs / "client.key",
            ),
            cluster=ClusterSettings(
                nats_urls=tuple(nats.client_urls), partitions=4, nats_tls_ca_file=certs / "ca.crt"
            ),
        )
        async with app_and_client(settings) as (_, client):
            request = ingest_service_pb2.IngestEventsRequest(events=[event(new_user(), text="space opera")])
            acks = await client.ingest.IngestEvents(request, timeout=30)
        assert [ack.duplicate for ack in acks.acks] == [False]
        nc = await connect(nats.client_urls, security=NatsSecurity.read(settings.cluster))
        try:
            assert (await nc.jetstream().stream_info(STREAM)).state.messages == 1
        finally:
            await nc.close()
