"""TLS from the vector store to a Milvus server (`MilvusTls`, from settings.milvus.tls_*).

The CA verifies the server (Milvus tlsMode 1); with a client certificate and key, mutual TLS
(tlsMode 2). The files are checked by `MilvusTls.check` (a StartupError) before anything starts.
A refused handshake (no client certificate, a certificate of another CA, plaintext against TLS or
the reverse) cannot be told from an unreachable server at the gRPC level: opening the store raises
UnavailableError after the connect timeout, with a hint (`tls_hint`) to check the TLS settings
against the server's tlsMode.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftwise.errors import StartupError

if TYPE_CHECKING:
    from driftwise.settings import MilvusSettings


@dataclass(frozen=True, slots=True)
class MilvusTls:
    """TLS to a Milvus server: ca_file verifies it; cert_file and key_file: mutual TLS."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str = ""

    @classmethod
    def from_settings(cls, milvus: MilvusSettings) -> MilvusTls | None:
        """None: plaintext (settings validated as a whole: no half configuration gets here)."""
        if milvus.tls_ca_file is None:
            return None
        return cls(milvus.tls_ca_file, milvus.tls_cert_file, milvus.tls_key_file, milvus.tls_server_name)

    @property
    def mutual(self) -> bool:
        return self.cert_file is not None and self.key_file is not None

    def check(self) -> None:
        """StartupError naming the setting unless every file is readable PEM (and the key matches
        the certificate): pymilvus reads them only when it connects, after everything else started."""
        what = "milvus.tls_ca_file"
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if self.cert_file is not None and self.key_file is not None:
                what = "milvus.tls_cert_file / milvus.tls_key_file"
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except ssl.SSLError as exc:
            raise StartupError(f"{what}: not a PEM certificate or matching key ({exc.reason})") from exc
        except OSError as exc:
            name = exc.filename or self.ca_file
            raise StartupError(f"{what} {name}: {exc.strerror or exc}") from exc

    def client_kwargs(self) -> dict[str, Any]:
        """MilvusClient arguments (pymilvus 2.6 GrpcHandler): server_pem_path is its one-way root
        certificate and wins over the mutual trio (ca_pem_path, client_pem_path, client_key_path)."""
        kwargs: dict[str, Any] = {"secure": True}
        if self.mutual:
            kwargs.update(
                ca_pem_path=str(self.ca_file),
                client_pem_path=str(self.cert_file),
                client_key_path=str(self.key_file),
            )
        else:
            kwargs["server_pem_path"] = str(self.ca_file)
        if self.server_name:
            kwargs["server_name"] = self.server_name
        return kwargs


def tls_hint(tls: MilvusTls | None) -> str:
    """What to check when a Milvus server could not be reached with these TLS settings."""
    if tls is None:
        return "if Milvus is up with TLS on (tlsMode 1 or 2): set milvus.tls_ca_file"
    if tls.mutual:
        return "if Milvus is up: check milvus.tls_* against its certificates and tlsMode"
    return (
        "if Milvus is up: with tlsMode 2 it needs milvus.tls_cert_file and tls_key_file; "
        "check milvus.tls_ca_file against its certificate"
    )
