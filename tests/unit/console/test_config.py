"""The console's configuration: settings and flags, files read at start, the token rule."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from driftwise.cli import build_parser
from driftwise.console.app import console_config, hosted_console
from driftwise.errors import StartupError
from driftwise.settings import ConsoleSettings, ServerSettings, Settings, TlsSettings


def test_defaults_bind_loopback_and_host_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    console = Settings().console
    assert console.port is None and console.host == "127.0.0.1" and console.token_file is None
    config = console_config(console, "127.0.0.1:50051")
    assert config.port == 8080 and config.allowed_hosts is not None and "localhost" in config.allowed_hosts


def test_the_environment_sets_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTWISE_CONSOLE__PORT", "8090")
    monkeypatch.setenv("DRIFTWISE_CONSOLE__ALLOWED_HOSTS", '["console.example"]')
    console = Settings().console
    assert console.port == 8090 and console.allowed_hosts == ("console.example",)


def test_half_tls_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"tls_cert_file and console\.tls_key_file"):
        ConsoleSettings(tls_ca_file=Path("ca.crt"), tls_cert_file=Path("c.crt"))
    with pytest.raises(ValidationError, match=r"needs console\.tls_ca_file"):
        ConsoleSettings(tls_server_name="ranking")


def test_a_token_file_is_read_and_kept_off_plaintext_networks(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    config = console_config(ConsoleSettings(token_file=token), "localhost:50051")
    assert config.default_token == "s3cret"
    with pytest.raises(StartupError, match="clear text to ranking:50051"):
        console_config(ConsoleSettings(token_file=token), "ranking:50051")
    with pytest.raises(StartupError, match=r"console: .*missing"):
        console_config(ConsoleSettings(token_file=tmp_path / "missing"), "localhost:50051")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(StartupError, match="empty"):
        console_config(ConsoleSettings(token_file=tmp_path / "empty"), "localhost:50051")


def test_the_hosted_console_reads_its_own_server() -> None:
    settings = Settings(server=ServerSettings(host="0.0.0.0", port=7000), console=ConsoleSettings(port=0))
    assert hosted_console(settings).target.address == "127.0.0.1:7000"
    assert hosted_console(settings, 7001).target.address == "127.0.0.1:7001"
    elsewhere = settings.model_copy(update={"console": ConsoleSettings(port=0, target="ranking:50051")})
    assert hosted_console(elsewhere).target.address == "ranking:50051"


def test_a_tls_server_needs_the_console_to_trust_it(tmp_path: Path) -> None:
    for name in ("s.crt", "s.key"):
        (tmp_path / name).write_text("x")
    tls = TlsSettings(cert_file=tmp_path / "s.crt", key_file=tmp_path / "s.key")
    with pytest.raises(StartupError, match=r"console\.tls_ca_file"):
        hosted_console(Settings(tls=tls, console=ConsoleSettings(port=0)))


def test_the_command_line() -> None:
    args = build_parser().parse_args(
        [
            "console",
            "--target",
            "ranking:50051",
            "--host",
            "0.0.0.0",
            "--allowed-host",
            "a",
            "--allowed-host",
            "b",
        ]
    )
    assert args.target == "ranking:50051" and args.host == "0.0.0.0" and args.allowed_host == ["a", "b"]
    demo = build_parser().parse_args(["demo", "--keep"])
    assert demo.keep and not demo.keep_data
