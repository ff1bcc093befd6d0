"""gRPC credentials from settings.tls (the server's, every role) and from settings.triton (the
encoder's channel to a remote Triton)."""

from __future__ import annotations

from pathlib import Path

import grpc

from driftwise.errors import StartupError
from driftwise.settings import TlsSettings, TritonSettings


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StartupError(f"{what} {path}: {exc.strerror or exc}") from exc


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """None: plaintext. With tls.client_ca_file, a client certificate signed by it is required."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    pair = (_read(tls.key_file, "tls.key_file"), _read(tls.cert_file, "tls.cert_file"))
    client_ca = None if tls.client_ca_file is None else _read(tls.client_ca_file, "tls.client_ca_file")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def triton_channel_credentials(
    triton: TritonSettings,
) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, str]]]:
    """Credentials and channel options of the encoder's channel to a remote Triton (None:
    plaintext, always so for the local Triton on loopback). Reads the files now: a missing one
    is a StartupError before anything starts."""
    return _channel_credentials(
        "triton.tls_", triton.tls_ca_file, triton.tls_cert_file, triton.tls_key_file, triton.tls_server_name
    )


def _channel_credentials(
    setting: str, ca_file: Path | None, cert_file: Path | None, key_file: Path | None, server_name: str
) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, str]]]:
    """TLS towards a server verified with `ca_file`, presenting cert/key when given (mutual TLS);
    `setting` prefixes the setting names in errors (e.g. "triton.tls_" + "ca_file")."""
    if ca_file is None:
        return None, []
    key = cert = None
    if cert_file is not None and key_file is not None:
        cert = _read(cert_file, f"{setting}cert_file")
        key = _read(key_file, f"{setting}key_file")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, f"{setting}ca_file"), private_key=key, certificate_chain=cert
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return credentials, options
