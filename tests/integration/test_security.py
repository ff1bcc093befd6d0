"""TLS, mutual TLS and bearer tokens with scopes, on real servers over loopback.

Certificates are made at run time by the openssl CLI in a temporary directory: a CA, a server
certificate (localhost, 127.0.0.1) and a client certificate it signs, and a client certificate
from another CA. One all-in-one app requires TLS, client certificates from the CA, and tokens (the
cluster roles serve through the same server code, driftwise.server.start_server)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from driftwise.inference.triton_server import LocalTritonServer
from driftwise.security.tokens import hash_token
from driftwise.server import App, running_app
from driftwise.settings import (
    AuthSettings,
    ServerSettings,
    Settings,
    TlsSettings,
    TritonSettings,
)
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    insight_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)
from tests.integration.support import event, new_user

pytestmark = pytest.mark.integration

SERVER_NAME = "localhost"  # in the server certificate; the channels target 127.0.0.1
# test-only tokens: the tokens file the servers read holds their SHA-256 hashes
FRONTEND = "frontend-token"  # tenant frontend: recommend, events:write
READER = "reader-token"  # tenant support: profiles:read
CONSOLE = "console-token"  # tenant console: insights:read
TOKENS = {
    "frontend": (["recommend", "events:write"], FRONTEND),
    "support": (["profiles:read"], READER),
    "console": (["insights:read"], CONSOLE),
}


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(dir_: Path, name: str) -> tuple[Path, Path]:
    cert, key = dir_ / f"{name}.crt", dir_ / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN={name}",
    )  # fmt: skip
    return cert, key


def _leaf(dir_: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, csr, ext = (dir_ / f"{name}.{s}" for s in ("crt", "key", "csr", "ext"))
    ext.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", ext,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    dir_ = tmp_path_factory.mktemp("pki")
    ca, other_ca = _ca(dir_, "ca"), _ca(dir_, "other-ca")
    server = _leaf(
        dir_,
        "server",
        ca,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    client = _leaf(dir_, "client", ca, "extendedKeyUsage=clientAuth\n")
    stranger = _leaf(dir_, "stranger", other_ca, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], *server, *client, *stranger)


def _tokens_file(dir_: Path) -> Path:
    path = dir_ / "tokens.toml"
    path.write_text(
        "".join(
            f'[tenants.{name}]\nscopes = {scopes!r}\ntoken_sha256 = ["{hash_token(token)}"]\n'.replace(
                "'", '"'
            )
            for name, (scopes, token) in TOKENS.items()
        )
    )
    return path


@dataclass
class Secure:
    app: App
    pki: Pki


@pytest.fixture(scope="module")
async def secure(
    triton: LocalTritonServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secure]:
    data = tmp_path_factory.mktemp("secure")
    auth = AuthSettings(enabled=True, tokens_file=_tokens_file(data))
    settings = Settings(
        data_dir=data,
        server=ServerSettings(port=0, grace_seconds=0.2, health_port=0),
        triton=TritonSettings(url=triton.grpc_url),
        tls=TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.ca),
        auth=auth,
    )
    async with contextlib.AsyncExitStack() as stack:
        app = await stack.enter_async_context(running_app(settings))
        yield Secure(app, pki)


def _credentials(pki: Pki, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


@contextlib.asynccontextmanager
async def channel(
    target: str, credentials: grpc.ChannelCredentials | None
) -> AsyncIterator[grpc.aio.Channel]:
    if credentials is None:
        ch = grpc.aio.insecure_channel(target)
    else:
        ch = grpc.aio.secure_channel(target, credentials, [("grpc.ssl_target_name_override", SERVER_NAME)])
    try:
        yield ch
    finally:
        await ch.close()


def _mtls(s: Secure, target: str | None = None) -> contextlib.AbstractAsyncContextManager[grpc.aio.Channel]:
    return channel(target or s.app.target, _credentials(s.pki, s.pki.client_cert, s.pki.client_key))


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def reason(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, "refusals carry google.rpc details"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return err.code(), info.reason, dict(info.metadata)


async def _health(ch: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(ch)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(response.status)


# -- transport -------------------------------------------------------------------------------------


async def test_plaintext_client_is_refused(secure: Secure) -> None:
    async with channel(secure.app.target, None) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _health(ch)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("client", ["no certificate", "certificate of another CA"])
async def test_mutual_tls_refuses_clients_without_a_good_certificate(secure: Secure, client: str) -> None:
    pki = secure.pki
    cert, key = (None, None) if client == "no certificate" else (pki.stranger_cert, pki.stranger_key)
    async with channel(secure.app.target, _credentials(pki, cert, key)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _health(ch)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # refused in the handshake


async def test_good_certificate_and_health_without_token(secure: Secure) -> None:
    async with _mtls(secure) as ch:
        assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING  # kubelet sends no token


async def test_plaintext_health_port_serves_only_health(secure: Secure) -> None:
    # for kubelet's native gRPC probes, which cannot do TLS
    assert secure.app.health_port is not None
    async with channel(f"127.0.0.1:{secure.app.health_port}", None) as ch:
        assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ranking_service_pb2_grpc.RankingServiceStub(ch).Recommend(
                ranking_service_pb2.RecommendRequest(user_id=new_user()), metadata=bearer(FRONTEND), timeout=5
            )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- tokens and scopes -----------------------------------------------------------------------------


async def test_unary_call_needs_a_token_with_its_scope(secure: Secure) -> None:
    request = ranking_service_pb2.RecommendRequest(user_id=new_user(), count=3)
    async with _mtls(secure) as ch:
        recommend = ranking_service_pb2_grpc.RankingServiceStub(ch).Recommend
        for metadata, expected in [
            ((), (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN", {})),
            ((("authorization", FRONTEND),), (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED_TOKEN", {})),
            (bearer("not-a-token"), (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN", {})),
            (
                bearer(READER),
                (
                    grpc.StatusCode.PERMISSION_DENIED,
                    "SCOPE_REQUIRED",
                    {"scope": "recommend", "tenant": "support"},
                ),
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await recommend(request, metadata=metadata, timeout=10)
            assert reason(info.value) == expected
        assert "needs scope 'recommend'" in (info.value.details() or "")
        await recommend(request, metadata=bearer(FRONTEND), timeout=30)  # OK


async def test_insight_methods_that_name_users_need_the_profiles_scope(secure: Secure) -> None:
    async with _mtls(secure) as ch:
        insights = insight_service_pb2_grpc.InsightServiceStub(ch)
        stats = await insights.GetServerStats(
            insight_service_pb2.GetServerStatsRequest(), metadata=bearer(CONSOLE), timeout=10
        )
        assert stats.role == "all"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await insights.ListUsers(
                insight_service_pb2.ListUsersRequest(), metadata=bearer(CONSOLE), timeout=10
            )
        assert reason(info.value) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "SCOPE_REQUIRED",
            {"scope": "profiles:read", "tenant": "console"},
        )
        await insights.ListUsers(insight_service_pb2.ListUsersRequest(), metadata=bearer(READER), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await insights.GetOnlineQuality(
                insight_service_pb2.GetOnlineQualityRequest(), metadata=bearer(READER), timeout=10
            )
        assert reason(info.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_REQUIRED")


async def test_streams_are_refused_before_reading(secure: Secure) -> None:
    user = new_user()
    request = ingest_service_pb2.StreamEventsRequest(event=event(user, text="a film about sailing"))
    async with _mtls(secure) as ch:
        stream_events = ingest_service_pb2_grpc.IngestServiceStub(ch).StreamEvents
        profiles = profile_service_pb2_grpc.ProfileServiceStub(ch)
        for metadata, code in [
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (bearer(READER), grpc.StatusCode.PERMISSION_DENIED),
        ]:
            call = stream_events(metadata=metadata, timeout=10)
            await call.write(request)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call.read()
            assert info.value.code() == code
        # nothing of the refused streams was stored
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await profiles.GetProfile(
                profile_service_pb2.GetProfileRequest(user_id=user), metadata=bearer(READER)
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        call = stream_events(metadata=bearer(FRONTEND), timeout=30)
        await call.write(request)
        response = await call.read()
        assert not response.HasField("error")
        await call.done_writing()
        profile = await profiles.GetProfile(
            profile_service_pb2.GetProfileRequest(user_id=user), metadata=bearer(READER), timeout=10
        )
        assert profile.profile.user_id == user

        # a server stream: the frontend tenant may not watch profiles
        watch = profiles.WatchProfile(
            profile_service_pb2.WatchProfileRequest(user_id=user), metadata=bearer(FRONTEND), timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await watch.read()
        assert reason(info.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_REQUIRED")


async def test_reflection_needs_a_valid_token(secure: Secure) -> None:
    list_services = reflection_pb2.ServerReflectionRequest(list_services="")
    async with _mtls(secure) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.ServerReflectionInfo(iter([list_services]), timeout=10):
                pass
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        responses = [
            r async for r in stub.ServerReflectionInfo(iter([list_services]), metadata=bearer(READER))
        ]
    names = {s.name for s in responses[0].list_services_response.service}
    assert "driftwise.v1.RankingService" in names


# -- the Python client -------------------------------------------------------------------------


async def test_python_client_over_mutual_tls_with_a_token(secure: Secure) -> None:
    from driftwise_client import AsyncDriftwiseClient, PermissionDenied, TlsConfig

    pki = secure.pki
    tls = TlsConfig.from_files(pki.ca, pki.client_cert, pki.client_key, server_name_override=SERVER_NAME)
    async with AsyncDriftwiseClient(secure.app.target, tls=tls, token=FRONTEND, timeout=30) as client:
        await client.recommend(new_user(), count=2)
        with pytest.raises(PermissionDenied) as info:
            await client.get_profile(new_user())
    assert info.value.details.reason == "SCOPE_REQUIRED"
    assert info.value.details.metadata["scope"] == "profiles:read"
