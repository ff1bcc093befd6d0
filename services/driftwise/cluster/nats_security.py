"""TLS and credentials of the JetStream roles' NATS connection, from settings.cluster.nats_*.

:meth:`NatsSecurity.read` reads every file at start, before Triton, Milvus or NATS are reached: a
missing or unreadable file, a certificate that is not PEM, a key that does not match it, a
credentials file without its JWT or seed, or an empty token file is a StartupError naming the
setting. The result is what :func:`driftwise.cluster.event_stream.connect` takes.

- ``nats_tls_ca_file``: TLS, the servers verified with that CA (and with their host name, or
  ``nats_tls_server_name``); ``connect`` then refuses a server that does not offer TLS instead of
  going on in plaintext (nats-py would).
- ``nats_tls_cert_file`` / ``nats_tls_key_file``: the client certificate, for servers with
  ``tls { verify: true }`` (mutual TLS).
- ``nats_credentials_file``: a ``.creds`` file (user JWT + nkey seed; servers in operator mode).
  nats-py reads it again at every (re)connect, so it may be rotated in place.
- ``nats_token_file``: a file holding the token (servers with ``authorization { token }``); read
  once here: a rotated token needs a restart.
"""

from __future__ import annotations

import importlib.util
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from driftwise.errors import StartupError

if TYPE_CHECKING:
    from driftwise.settings import ClusterSettings

__all__ = ["NatsSecurity"]

_JWT_MARKER = "BEGIN NATS USER JWT"
_SEED_MARKER = "BEGIN USER NKEY SEED"


@dataclass(frozen=True, slots=True)
class NatsSecurity:
    """What the NATS connection presents and verifies; the defaults: plaintext, no credentials."""

    tls: ssl.SSLContext | None = None
    tls_hostname: str | None = None
    mutual: bool = False  # tls presents a client certificate
    credentials_file: Path | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def read(cls, cluster: ClusterSettings) -> NatsSecurity:
        """Read and check the files settings.cluster.nats_* name (StartupError naming the setting)."""
        tls = _tls_context(cluster)
        if cluster.nats_credentials_file is not None:
            _check_credentials(cluster.nats_credentials_file)
        token = None if cluster.nats_token_file is None else _read_token(cluster.nats_token_file)
        return cls(
            tls=tls,
            tls_hostname=cluster.nats_tls_server_name or None,
            mutual=cluster.nats_tls_cert_file is not None,
            credentials_file=cluster.nats_credentials_file,
            token=token,
        )

    def describe(self) -> str:
        """For the start log: what is on, never a secret."""
        parts = []
        if self.tls is not None:
            parts.append("TLS (mutual)" if self.mutual else "TLS")
        if self.credentials_file is not None:
            parts.append(f"credentials file {self.credentials_file}")
        if self.token is not None:
            parts.append("token")
        return ", ".join(parts) or "plaintext, no credentials"


def _tls_context(cluster: ClusterSettings) -> ssl.SSLContext | None:
    if cluster.nats_tls_ca_file is None:
        return None
    files = {
        "cluster.nats_tls_ca_file": cluster.nats_tls_ca_file,
        "cluster.nats_tls_cert_file": cluster.nats_tls_cert_file,
        "cluster.nats_tls_key_file": cluster.nats_tls_key_file,
    }
    for setting, path in files.items():
        if path is not None:
            _read_bytes(path, setting)  # ssl's errors may not name the file
    what = "cluster.nats_tls_ca_file"
    try:
        context = ssl.create_default_context(cafile=str(cluster.nats_tls_ca_file))
        if cluster.nats_tls_cert_file is not None and cluster.nats_tls_key_file is not None:
            what = "cluster.nats_tls_cert_file / cluster.nats_tls_key_file"
            context.load_cert_chain(str(cluster.nats_tls_cert_file), str(cluster.nats_tls_key_file))
    except ssl.SSLError as exc:
        raise StartupError(f"{what}: not a PEM certificate or matching key ({exc.reason})") from exc
    return context


def _read_bytes(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StartupError(f"{setting} {path}: {exc.strerror or exc}") from exc


def _read_text(path: Path, setting: str) -> str:
    try:
        return _read_bytes(path, setting).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StartupError(f"{setting} {path}: not UTF-8 text") from exc


def _check_credentials(path: Path) -> None:
    setting = "cluster.nats_credentials_file"
    text = _read_text(path, setting)
    # nats-py reads the JWT by looking for its marker line by line and never stops without one
    for marker in (_JWT_MARKER, _SEED_MARKER):
        if marker not in text:
            raise StartupError(f"{setting} {path}: not a NATS credentials file (no '{marker}' section)")
    if not _nkeys_installed():  # nats-py imports it only when it connects
        raise StartupError(f"{setting} needs the nkeys package (pip install 'nats-py[nkeys]')")


def _nkeys_installed() -> bool:
    return importlib.util.find_spec("nkeys") is not None


def _read_token(path: Path) -> str:
    setting = "cluster.nats_token_file"
    token = _read_text(path, setting).strip()
    if not token:
        raise StartupError(f"{setting} {path}: empty")
    if any(c.isspace() for c in token):
        raise StartupError(f"{setting} {path}: the token is one line without spaces")
    return token
