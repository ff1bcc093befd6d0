from pathlib import Path

import pytest
from pydantic import ValidationError

from driftwise.model.events import EventType, Layer
from driftwise.settings import Settings
from driftwise.storage.milvus_tls import MilvusTls


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    s = Settings()
    assert s.triton.url == "" and s.milvus_uri.endswith("milvus.db")
    assert s.interest.half_life_seconds[Layer.SURFACE] == 3600.0
    assert (s.triton.model_repository / "text_encoder" / "config.pbtxt").exists()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "driftwise.toml"
    config.write_text(
        'data_dir = "/srv/dw"\n[server]\nport = 7000\n[interest]\ntopic_temperature = 0.5\n'
        "[interest.event_weights]\n1 = 0.1\n2 = 1\n3 = 0.2\n4 = 2\n5 = 1.5\n6 = 2\n7 = 3\n"
        "8 = -1\n9 = -0.2\n10 = -2\n"
    )
    monkeypatch.setenv("DRIFTWISE_CONFIG", str(config))
    monkeypatch.setenv("DRIFTWISE_SERVER__PORT", "7001")
    s = Settings()
    assert s.data_dir == Path("/srv/dw")
    assert s.server.port == 7001
    assert s.interest.topic_temperature == 0.5
    assert s.interest.event_weights[EventType.VIEW] == 0.1


def test_invalid_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTWISE_SERVER__PORT", "-1")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tls": {"key_file": "k.pem"}}, "tls.cert_file and tls.key_file go together"),
        ({"tls": {"cert_file": "c.pem"}}, "tls.cert_file and tls.key_file go together"),
        ({"tls": {"client_ca_file": "ca.pem"}}, "needs tls.cert_file"),
        ({"triton": {"url": "t:8001", "tls_cert_file": "c.pem"}}, "tls_key_file go together"),
        (
            {"triton": {"url": "t:8001", "tls_cert_file": "c.pem", "tls_key_file": "k.pem"}},
            "needs triton.tls_ca_file",
        ),
        ({"triton": {"url": "t:8001", "tls_server_name": "triton"}}, "needs triton.tls_ca_file"),
        ({"triton": {"tls_ca_file": "ca.pem"}}, "local Triton listens in plaintext"),
        ({"auth": {"enabled": True}}, "auth.enabled needs auth.tokens_file"),
        (
            {"cluster": {"nats_urls": ["nats://n:4222"], "nats_tls_cert_file": "c.pem"}},
            "cluster.nats_tls_cert_file and cluster.nats_tls_key_file go together",
        ),
        (
            {"cluster": {"nats_urls": ["nats://n:4222"], "nats_tls_key_file": "k.pem"}},
            "cluster.nats_tls_cert_file and cluster.nats_tls_key_file go together",
        ),
        (
            {
                "cluster": {
                    "nats_urls": ["n:4222"],
                    "nats_tls_cert_file": "c.pem",
                    "nats_tls_key_file": "k.pem",
                }
            },
            "needs cluster.nats_tls_ca_file",
        ),
        (
            {"cluster": {"nats_urls": ["n:4222"], "nats_tls_server_name": "nats"}},
            "needs cluster.nats_tls_ca_file",
        ),
        ({"cluster": {"nats_token_file": "token"}}, "cluster.nats_token_file: for the NATS servers"),
        (
            {"cluster": {"nats_tls_ca_file": "ca.pem", "nats_credentials_file": "u.creds"}},
            "cluster.nats_tls_ca_file, cluster.nats_credentials_file: .*cluster.nats_urls, which is empty",
        ),
        ({"cluster": {"nats_token": "s3cret"}}, "Extra inputs are not permitted"),  # files only
        ({"auth": {"tokenfile": "t.toml"}}, "Extra inputs are not permitted"),
    ],
)
def test_half_security_configurations_are_refused(
    overrides: dict[str, dict[str, object]], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    with pytest.raises(ValidationError, match=message):
        Settings(**overrides)  # type: ignore[arg-type]


def test_security_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    assert Settings().tls.cert_file is None and not Settings().auth.enabled  # plaintext, open
    for key, value in {
        "TLS__CERT_FILE": "/tls/tls.crt",
        "TLS__KEY_FILE": "/tls/tls.key",
        "TLS__CLIENT_CA_FILE": "/tls/ca.crt",
        "AUTH__ENABLED": "true",
        "AUTH__TOKENS_FILE": "/auth/tokens.toml",
    }.items():
        monkeypatch.setenv(f"DRIFTWISE_{key}", value)
    s = Settings()
    assert s.tls.client_ca_file == Path("/tls/ca.crt") and s.auth.tokens_file == Path("/auth/tokens.toml")


def test_triton_tls_files_are_read_before_anything_starts(tmp_path: Path) -> None:
    from driftwise.errors import StartupError
    from driftwise.server import ServerFiles

    missing = Settings(triton={"url": "triton:8001", "tls_ca_file": tmp_path / "ca.crt"})  # type: ignore[arg-type]
    with pytest.raises(StartupError, match=r"triton\.tls_ca_file .*ca\.crt"):
        ServerFiles.read(missing)
    # the cluster roles encode through Triton too (ingest its events, every role the topic labels)
    for role in ("ingest", "worker", "ranking"):
        cluster_role = Settings(
            server={"role": role},  # type: ignore[arg-type]
            cluster={"nats_urls": ["nats://127.0.0.1:4222"]},  # type: ignore[arg-type]
            triton=missing.triton,
        )
        with pytest.raises(StartupError, match=r"triton\.tls_ca_file"):
            ServerFiles.read(cluster_role)
    assert ServerFiles.read(Settings()).triton_credentials is None  # local Triton: plaintext


@pytest.mark.parametrize("role", ["ingest", "worker", "ranking"])
def test_jetstream_roles_read_the_triton_tls_files(role: str, tmp_path: Path) -> None:
    """Every JetStream role encodes with Triton: its TLS files are read (a missing one refused)."""
    from driftwise.errors import StartupError
    from driftwise.server import ServerFiles

    ca = tmp_path / "ca.crt"
    settings = Settings(
        server={"role": role},
        cluster={"nats_urls": ["nats://nats:4222"]},
        triton={"url": "triton:8001", "tls_ca_file": ca, "tls_server_name": "triton"},
    )
    with pytest.raises(StartupError, match=r"triton\.tls_ca_file .*ca\.crt"):
        ServerFiles.read(settings)
    ca.write_bytes(b"any bytes: gRPC parses the roots when it connects")
    files = ServerFiles.read(settings)
    assert files.triton_credentials is not None
    assert files.triton_options == (("grpc.ssl_target_name_override", "triton"),)


def test_nats_security_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    for key, value in {
        "NATS_URLS": '["tls://nats-0:4222","tls://nats-1:4222"]',
        "NATS_TLS_CA_FILE": "/nats/ca.crt",
        "NATS_TLS_CERT_FILE": "/nats/tls.crt",
        "NATS_TLS_KEY_FILE": "/nats/tls.key",
        "NATS_TLS_SERVER_NAME": "nats",
        "NATS_CREDENTIALS_FILE": "/nats-creds/user.creds",
        "NATS_TOKEN_FILE": "/nats-token/token",
    }.items():
        monkeypatch.setenv(f"DRIFTWISE_CLUSTER__{key}", value)
    cluster = Settings().cluster
    assert cluster.nats_urls == ("tls://nats-0:4222", "tls://nats-1:4222")
    assert (cluster.nats_tls_ca_file, cluster.nats_tls_cert_file, cluster.nats_tls_key_file) == (
        Path("/nats/ca.crt"),
        Path("/nats/tls.crt"),
        Path("/nats/tls.key"),
    )
    assert cluster.nats_tls_server_name == "nats"
    assert cluster.nats_credentials_file == Path("/nats-creds/user.creds")
    assert cluster.nats_token_file == Path("/nats-token/token")


@pytest.mark.parametrize(
    ("milvus", "message"),
    [
        ({"tls_ca_file": "ca.pem"}, "milvus.tls_\\* need a Milvus server"),
        ({"uri": "/srv/milvus.db", "tls_ca_file": "ca.pem"}, "Milvus Lite is a local file"),
        ({"uri": "http://m:19530", "tls_cert_file": "c.pem"}, "tls_key_file go together"),
        (
            {"uri": "http://m:19530", "tls_cert_file": "c.pem", "tls_key_file": "k.pem"},
            "needs milvus.tls_ca_file",
        ),
        ({"uri": "http://m:19530", "tls_server_name": "milvus"}, "needs milvus.tls_ca_file"),
    ],
)
def test_half_milvus_tls_configurations_are_refused(
    milvus: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    with pytest.raises(ValidationError, match=message):
        Settings(milvus=milvus)  # type: ignore[arg-type]


def test_milvus_tls_client_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """pymilvus: server_pem_path is the one-way root and wins over the mutual trio."""
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    assert MilvusTls.from_settings(Settings().milvus) is None  # plaintext
    for key, value in {
        "URI": "https://m:19530",
        "TLS_CA_FILE": "/m/ca.crt",
        "TLS_SERVER_NAME": "milvus",
    }.items():
        monkeypatch.setenv(f"DRIFTWISE_MILVUS__{key}", value)
    one_way = MilvusTls.from_settings(Settings().milvus)
    assert one_way is not None and one_way.client_kwargs() == {
        "secure": True,
        "server_pem_path": "/m/ca.crt",
        "server_name": "milvus",
    }
    monkeypatch.setenv("DRIFTWISE_MILVUS__TLS_CERT_FILE", "/m/tls.crt")
    monkeypatch.setenv("DRIFTWISE_MILVUS__TLS_KEY_FILE", "/m/tls.key")
    mutual = MilvusTls.from_settings(Settings().milvus)
    assert mutual is not None and mutual.client_kwargs() == {
        "secure": True,
        "ca_pem_path": "/m/ca.crt",
        "client_pem_path": "/m/tls.crt",
        "client_key_path": "/m/tls.key",
        "server_name": "milvus",
    }
