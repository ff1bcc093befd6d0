"""The JetStream roles' NATS connection with TLS and a token, against real nats-server processes
(certificates from scripts/dev_certs.sh, made at run time, never committed).

One node serves TLS and requires a token, one requires mutual TLS: the connection that the
settings (cluster.nats_*) make publishes and reads events; without the CA, trusting another CA,
without a client certificate, without the token or with a wrong one the connection never opens
(each refusal logged); a TLS client refuses a plaintext server rather than going on in plaintext,
never sends its token to one, and closes a connection whose server comes back in plaintext. A
JetStream role stops at a bad NATS file before it connects anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftwise.cluster.event_stream import Event, EventStream, connect
from driftwise.cluster.nats_security import NatsSecurity
from driftwise.errors import StartupError
from driftwise.server import running_app
from driftwise.settings import REPO_ROOT, ClusterSettings, ServerSettings, Settings, TritonSettings
from driftwise_testing.nats_cluster import LocalNatsCluster, NatsNode, NatsServerTls

pytestmark = pytest.mark.integration

TOKEN = "right-" + uuid.uuid4().hex  # a throwaway token of this run


@dataclass
class Pki:
    certs: Path  # ca.crt, server.*, client.* of the CA the servers use
    other: Path  # the same from another CA


@dataclass
class SecureNats:
    pki: Pki
    tls_token: LocalNatsCluster  # TLS (one way), token required
    mutual: LocalNatsCluster  # mutual TLS, no token
    token_file: Path


def _dev_certs(dir_: Path) -> Path:
    subprocess.run([str(REPO_ROOT / "scripts" / "dev_certs.sh"), str(dir_)], check=True, capture_output=True)
    return dir_


@pytest.fixture(scope="module")
def secure_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNats]:
    pki = Pki(
        _dev_certs(tmp_path_factory.mktemp("pki") / "ca"),
        _dev_certs(tmp_path_factory.mktemp("pki") / "other"),
    )
    server = NatsServerTls(pki.certs / "server.crt", pki.certs / "server.key")
    mutual = NatsServerTls(
        pki.certs / "server.crt", pki.certs / "server.key", ca_file=pki.certs / "ca.crt", verify_clients=True
    )
    token_file = tmp_path_factory.mktemp("secrets") / "nats-token"
    token_file.write_text(TOKEN + "\n")
    with (
        LocalNatsCluster(tmp_path_factory.mktemp("nats-tls"), tls=server, token=TOKEN) as tls_token,
        LocalNatsCluster(tmp_path_factory.mktemp("nats-mtls"), tls=mutual) as mutual_nats,
    ):
        yield SecureNats(pki, tls_token, mutual_nats, token_file)


def security(nats: LocalNatsCluster, **files: Path | str) -> NatsSecurity:
    """What a role connects with: settings.cluster.nats_* read as at start."""
    return NatsSecurity.read(ClusterSettings(nats_urls=tuple(nats.client_urls), **files))  # type: ignore[arg-type]


async def test_events_published_and_read_over_tls_with_the_token(secure_nats: SecureNats) -> None:
    certs = secure_nats.pki.certs
    nats = secure_nats.tls_token
    assert all(url.startswith("tls://127.0.0.1:") for url in nats.client_urls)
    stream = await EventStream.open(
        nats.client_urls,
        partitions=1,
        security=security(nats, nats_tls_ca_file=certs / "ca.crt", nats_token_file=secure_nats.token_file),
    )
    try:
        batch = [Event(uuid.uuid4().hex, f"user-{i}", f"payload {i}".encode()) for i in range(5)]
        published = await stream.publish(batch)
        assert [p.duplicate for p in published] == [False] * 5
        reader = await stream.reader(0, start_seq=published[0].seq)
        read = await reader.fetch(batch=10, timeout_s=2.0)
        await reader.close()
        assert [(e.event_id, e.payload) for e in read] == [(e.event_id, e.payload) for e in batch]
    finally:
        await stream.close()


async def test_mutual_tls_with_a_client_certificate(secure_nats: SecureNats) -> None:
    certs = secure_nats.pki.certs
    nats = secure_nats.mutual
    nc = await connect(
        nats.client_urls,
        security=security(
            nats,
            nats_tls_ca_file=certs / "ca.crt",
            nats_tls_cert_file=certs / "client.crt",
            nats_tls_key_file=certs / "client.key",
            nats_tls_server_name="localhost",  # in the certificate too, like 127.0.0.1: checks the override
        ),
    )
    try:
        assert (await nc.jetstream().account_info()).streams >= 0
    finally:
        await nc.close()


async def refused(
    caplog: pytest.LogCaptureFixture, nats: LocalNatsCluster, security: NatsSecurity, reason: str
) -> None:
    """connect() does not open, and logs a refusal with `reason`; then it is cancelled (it would
    retry forever, as against a server not up yet)."""
    caplog.clear()
    started = time.monotonic()

    def logged() -> str:
        return " | ".join(record.getMessage() for record in caplog.records)

    with caplog.at_level(logging.WARNING, logger="driftwise.cluster.event_stream"):
        attempt = asyncio.create_task(connect(nats.client_urls, security=security))
        while reason.lower() not in logged().lower() and not attempt.done():
            assert time.monotonic() - started < 5.0, f"no refusal with {reason!r} logged: {logged()}"
            await asyncio.sleep(0.02)
        if attempt.done():
            await (await attempt).close()
            raise AssertionError("the connection opened")
        attempt.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await attempt


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no CA (system CAs)", "certificate verify failed"),
        ("trusts another CA", "certificate verify failed"),
        ("no token", "authorization violation"),
        ("wrong token", "authorization violation"),
    ],
)
async def test_tls_token_node_refuses(
    secure_nats: SecureNats, caplog: pytest.LogCaptureFixture, case: str, reason: str, tmp_path: Path
) -> None:
    certs, other = secure_nats.pki.certs, secure_nats.pki.other
    wrong = tmp_path / "wrong-token"
    wrong.write_text("wrong-" + uuid.uuid4().hex)
    files: dict[str, Path] = {
        "no CA (system CAs)": {"nats_token_file": secure_nats.token_file},
        "trusts another CA": {
            "nats_tls_ca_file": other / "ca.crt",
            "nats_token_file": secure_nats.token_file,
        },
        "no token": {"nats_tls_ca_file": certs / "ca.crt"},
        "wrong token": {"nats_tls_ca_file": certs / "ca.crt", "nats_token_file": wrong},
    }[case]
    await refused(caplog, secure_nats.tls_token, security(secure_nats.tls_token, **files), reason)


@pytest.mark.parametrize(
    ("case", "reason"),
    [("no client certificate", "certificate required"), ("client certificate of another CA", "unknown ca")],
)
async def test_mutual_tls_node_refuses(
    secure_nats: SecureNats, caplog: pytest.LogCaptureFixture, case: str, reason: str
) -> None:
    certs, other = secure_nats.pki.certs, secure_nats.pki.other
    files: dict[str, Path] = {"nats_tls_ca_file": certs / "ca.crt"}
    if case == "client certificate of another CA":
        files |= {"nats_tls_cert_file": other / "client.crt", "nats_tls_key_file": other / "client.key"}
    # the server's alert ends the handshake (TLS 1.3: seen at the client's first read)
    await refused(caplog, secure_nats.mutual, security(secure_nats.mutual, **files), reason)


async def test_a_tls_client_refuses_a_plaintext_server(
    secure_nats: SecureNats, nats_node: LocalNatsCluster, caplog: pytest.LogCaptureFixture
) -> None:
    ca = secure_nats.pki.certs / "ca.crt"
    with pytest.raises(StartupError, match=r"offers no TLS, which cluster.nats_tls_ca_file requires"):
        await connect(nats_node.client_urls, security=security(nats_node, nats_tls_ca_file=ca))
    # with a token: refused before CONNECT carries it
    with_token = security(nats_node, nats_tls_ca_file=ca, nats_token_file=secure_nats.token_file)
    await refused(caplog, nats_node, with_token, "the token is not sent in plaintext")


async def test_a_reconnection_to_a_plaintext_server_is_closed(
    secure_nats: SecureNats, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The server at the address comes back without TLS: the connection is closed, not resumed."""
    certs = secure_nats.pki.certs
    with LocalNatsCluster(
        tmp_path / "nats", tls=NatsServerTls(certs / "server.crt", certs / "server.key")
    ) as nats:
        tls = nats.nodes[0]
        nc = await connect(nats.client_urls, security=security(nats, nats_tls_ca_file=certs / "ca.crt"))
        try:
            nats.kill(0)
            plaintext = NatsNode(
                "n0", tmp_path / "plain", client_port=tls.client_port, monitor_port=tls.monitor_port
            )
            with caplog.at_level(logging.ERROR, logger="driftwise.cluster.event_stream"):
                plaintext.start()
                try:
                    deadline = time.monotonic() + 10.0
                    while not nc.is_closed:
                        assert time.monotonic() < deadline, "the connection was not closed"
                        await asyncio.sleep(0.05)
                finally:
                    plaintext.stop()
            assert "offers no TLS, which cluster.nats_tls_ca_file requires: closing" in caplog.text
        finally:
            await nc.close()


async def test_a_jetstream_role_stops_at_a_bad_nats_file_before_connecting(tmp_path: Path) -> None:
    """Read with the other files at start: nothing listens at these addresses, so reaching Triton
    or NATS first would fail otherwise (or hang: NATS is retried forever)."""
    settings = Settings(
        data_dir=tmp_path,
        server=ServerSettings(port=0, role="worker"),
        triton=TritonSettings(url="127.0.0.1:9"),
        cluster=ClusterSettings(nats_urls=("nats://127.0.0.1:9",), nats_token_file=tmp_path / "no-token"),
    )
    with pytest.raises(StartupError, match=r"cluster\.nats_token_file .*no-token: No such file"):
        async with running_app(settings):
            pass
