"""Settings of the web console (driftwise.console): where it listens, which server it reads, with
which TLS files and token, and where `driftwise eval` left its report.

`driftwise serve` hosts the console when `port` is set; `driftwise console --target host:port`
runs it alone, with its flags overriding these fields."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from driftwise.settings.base import Section


class ConsoleSettings(Section):
    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="HTTP port of the web console; `driftwise serve` hosts it when set (0: a free "
        "port); unset: no console.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the console binds: loopback by default; 0.0.0.0 only behind a network "
        "policy or a proxy that authenticates.",
    )
    target: str = Field(
        "",
        description="host:port of the Driftwise gRPC server the console reads; empty: the server "
        "that hosts it (server.host and its port).",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host header values the console answers (host or host:port), against DNS "
        "rebinding; empty: loopback names when bound to loopback, any otherwise.",
    )
    eval_report: Path = Field(
        Path("eval-results"),
        description="Where `driftwise eval --out` wrote: a folder holding results.json (or folders "
        "of them: the newest is shown), or a results.json.",
    )
    token_file: Path | None = Field(
        None,
        description="File holding a bearer token the console calls with until someone logs in with "
        "their own (a mounted Secret); unset: a token-protected server makes the console ask for one.",
    )
    tls_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) of the server's certificate; set: TLS to the target."
    )
    tls_cert_file: Path | None = Field(
        None, description="Client certificate chain (PEM) for a server requiring mutual TLS."
    )
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file (PEM).")
    tls_server_name: str = Field(
        "", description="Name to verify in the server's certificate instead of the target's host."
    )
    session_idle_seconds: float = Field(
        8 * 3600.0,
        gt=0,
        description="A browser session (and the token it holds) is forgotten after this idle.",
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> ConsoleSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "console.tls_cert_file and console.tls_key_file go together: set both or neither"
            )
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("console.tls_cert_file (mutual TLS) needs console.tls_ca_file")
        if self.tls_server_name and self.tls_ca_file is None:
            raise ValueError("console.tls_server_name needs console.tls_ca_file (TLS to the target)")
        return self
