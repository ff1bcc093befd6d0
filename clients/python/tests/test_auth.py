"""Tokens and TLS against real gRPC servers that record the metadata they receive."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from client_test_support import ScriptedServer

from driftwise_client import AsyncDriftwiseClient, DriftwiseClient, TlsConfig, Unavailable
from driftwise_client._channel import is_loopback


def test_token_is_sent_as_bearer_metadata_on_a_loopback_channel(scripted: ScriptedServer) -> None:
    with DriftwiseClient(scripted.target, token="s3cret") as client:
        client.recommend("u1")
        client.get_profile("u1", metadata=[("x-request-id", "abc")])
        with client.watch_profile("u1", timeout=5) as watch:
            next(watch)
        with client.stream_feedback() as stream:
            stream.done_writing()
    seen = scripted.script.calls
    assert [c.method for c in seen] == ["Recommend", "GetProfile", "WatchProfile", "StreamFeedback"]
    assert all(c.metadata.get("authorization") == "Bearer s3cret" for c in seen)
    assert seen[1].metadata.get("x-request-id") == "abc"
    assert str(seen[0].metadata.get("user-agent", "")).startswith("driftwise-client-python/")


async def test_async_token_provider_is_called_per_call(scripted: ScriptedServer) -> None:
    tokens = (f"t{i}" for i in itertools.count())
    async with AsyncDriftwiseClient(scripted.target, token=lambda: next(tokens)) as client:
        await client.recommend("u1")
        await client.recommend("u1")
    assert [c.metadata["authorization"] for c in scripted.script.calls] == ["Bearer t0", "Bearer t1"]


def test_a_token_is_not_sent_in_clear_text_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="clear text"):
        DriftwiseClient("driftwise.example.com:443", token="s3cret")
    DriftwiseClient("driftwise.internal:50051", token="s3cret", allow_insecure_token=True).close()


@pytest.mark.parametrize(
    ("target", "loopback"),
    [
        ("localhost:50051", True),
        ("127.0.0.1:50051", True),
        ("[::1]:50051", True),
        ("dns:///localhost:50051", True),
        ("unix:/tmp/driftwise.sock", True),
        ("10.0.0.7:50051", False),
        ("driftwise:50051", False),
        ("[2001:db8::1]:443", False),
    ],
)
def test_is_loopback(target: str, loopback: bool) -> None:
    assert is_loopback(target) is loopback


# -- TLS ------------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate signed by it, and
    an unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found")
    d = tmp_path_factory.mktemp("certs")
    ca = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
    for ca_name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ca_name}",
                 "-keyout", f"{ca_name}.key", "-out", f"{ca_name}.pem", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", *ca,
                 "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)  # fmt: skip
    return d


@pytest.fixture
def mtls_server(certs: Path) -> Iterator[ScriptedServer]:
    credentials = grpc.ssl_server_credentials(
        [((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())],
        root_certificates=(certs / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    server = ScriptedServer(credentials=credentials).start()
    try:
        yield server
    finally:
        server.stop()


def test_mutual_tls_with_an_access_token(certs: Path, mtls_server: ScriptedServer) -> None:
    tls = TlsConfig.from_files(certs / "ca.pem", certs / "client.pem", certs / "client.key")
    with DriftwiseClient(f"localhost:{mtls_server.port}", tls=tls, token="tls-token") as client:
        assert client.recommend("u1").items
    (call,) = mtls_server.script.calls
    assert call.metadata["authorization"] == "Bearer tls-token"  # grpc.access_token_call_credentials


async def test_async_mutual_tls_with_a_token_provider(certs: Path, mtls_server: ScriptedServer) -> None:
    tls = TlsConfig.from_files(certs / "ca.pem", certs / "client.pem", certs / "client.key")
    async with AsyncDriftwiseClient(
        f"localhost:{mtls_server.port}", tls=tls, token=lambda: "rotated"
    ) as client:
        assert (await client.recommend("u1")).items
    assert mtls_server.script.calls[0].metadata["authorization"] == "Bearer rotated"


def test_tls_fails_without_the_client_certificate_or_the_right_ca(
    certs: Path, mtls_server: ScriptedServer
) -> None:
    no_client_cert = TlsConfig(root_certificates=(certs / "ca.pem").read_bytes())
    wrong_ca = TlsConfig.from_files(certs / "other-ca.pem", certs / "client.pem", certs / "client.key")
    for tls in (no_client_cert, wrong_ca):
        with (
            DriftwiseClient(f"localhost:{mtls_server.port}", tls=tls, timeout=3) as client,
            pytest.raises(Unavailable),
        ):
            client.recommend("u1")
    assert not mtls_server.script.calls
    with pytest.raises(ValueError, match="both"):
        TlsConfig(certificate_chain=b"x")
