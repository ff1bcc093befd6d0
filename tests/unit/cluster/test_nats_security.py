"""settings.cluster.nats_* read at start (driftwise.cluster.nats_security): every bad file is a
StartupError naming its setting, before anything connects. The connections themselves are tested
against a real TLS nats-server in tests/integration/cluster/test_nats_security.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from driftwise.cluster import nats_security
from driftwise.cluster.nats_security import NatsSecurity
from driftwise.errors import StartupError
from driftwise.settings import REPO_ROOT, ClusterSettings

URLS = ("tls://127.0.0.1:4222",)
CREDS = """-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2lnbmF0dXJl
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUANOTAREALSEEDFORTHISTESTONLY
------END USER NKEY SEED------
"""


def cluster(**nats: object) -> ClusterSettings:
    return ClusterSettings(nats_urls=URLS, **nats)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.*, client.* from scripts/dev_certs.sh, made now (never committed)."""
    directory = tmp_path_factory.mktemp("pki") / "ca"
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "dev_certs.sh"), str(directory)], check=True, capture_output=True
    )
    return directory


def test_nothing_set_is_plaintext_without_credentials() -> None:
    security = NatsSecurity.read(cluster())
    assert security == NatsSecurity()
    assert security.describe() == "plaintext, no credentials"


def test_tls_files_are_read(certs: Path) -> None:
    one_way = NatsSecurity.read(cluster(nats_tls_ca_file=certs / "ca.crt", nats_tls_server_name="nats"))
    assert one_way.tls is not None and one_way.tls_hostname == "nats" and not one_way.mutual
    assert one_way.describe() == "TLS"
    mutual = NatsSecurity.read(
        cluster(
            nats_tls_ca_file=certs / "ca.crt",
            nats_tls_cert_file=certs / "client.crt",
            nats_tls_key_file=certs / "client.key",
        )
    )
    assert mutual.tls is not None and mutual.mutual and mutual.tls_hostname is None
    assert mutual.describe() == "TLS (mutual)"


def test_bad_tls_files_are_refused(certs: Path, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"cluster\.nats_tls_ca_file .*missing\.crt: No such file"):
        NatsSecurity.read(cluster(nats_tls_ca_file=tmp_path / "missing.crt"))
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    with pytest.raises(StartupError, match=r"cluster\.nats_tls_ca_file: not a PEM certificate"):
        NatsSecurity.read(cluster(nats_tls_ca_file=garbage))
    with pytest.raises(StartupError, match=r"cluster\.nats_tls_key_file .*gone: No such file"):
        NatsSecurity.read(
            cluster(
                nats_tls_ca_file=certs / "ca.crt",
                nats_tls_cert_file=certs / "client.crt",
                nats_tls_key_file=tmp_path / "gone",
            )
        )
    with pytest.raises(StartupError, match=r"nats_tls_key_file: not a PEM certificate or matching key"):
        NatsSecurity.read(
            cluster(
                nats_tls_ca_file=certs / "ca.crt",
                nats_tls_cert_file=certs / "client.crt",
                nats_tls_key_file=certs / "server.key",  # another certificate's key
            )
        )


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-token\n")  # as `echo` or a Secret may end it
    security = NatsSecurity.read(cluster(nats_token_file=path))
    assert security.token == "s3cret-token" and security.describe() == "token"
    assert "s3cret" not in repr(security)  # never in a log line
    for content, message in (("\n", "empty"), ("two words", "the token is one line without spaces")):
        path.write_text(content)
        with pytest.raises(StartupError, match=rf"cluster\.nats_token_file .*token: {message}"):
            NatsSecurity.read(cluster(nats_token_file=path))
    with pytest.raises(StartupError, match=r"cluster\.nats_token_file .*absent: No such file"):
        NatsSecurity.read(cluster(nats_token_file=tmp_path / "absent"))


def test_credentials_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "user.creds"
    path.write_text(CREDS)
    monkeypatch.setattr(nats_security, "_nkeys_installed", lambda: True)
    security = NatsSecurity.read(cluster(nats_credentials_file=path))
    assert security.credentials_file == path
    assert security.describe() == f"credentials file {path}"
    # nats-py would look for the JWT line by line forever: refused at start instead
    path.write_text(CREDS.split("\n\n")[1])
    with pytest.raises(StartupError, match=r"user\.creds: not a NATS credentials file .*NATS USER JWT"):
        NatsSecurity.read(cluster(nats_credentials_file=path))
    path.write_text(CREDS)
    monkeypatch.setattr(nats_security, "_nkeys_installed", lambda: False)
    with pytest.raises(StartupError, match=r"cluster\.nats_credentials_file needs the nkeys package"):
        NatsSecurity.read(cluster(nats_credentials_file=path))
    with pytest.raises(StartupError, match=r"cluster\.nats_credentials_file .*nowhere: No such file"):
        NatsSecurity.read(cluster(nats_credentials_file=tmp_path / "nowhere"))
