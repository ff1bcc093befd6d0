"""`driftwise serve` as an operator runs it: its own local Triton, the web console when
console.port is set, SIGTERM for a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tritonserver_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,comm"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    return [int(p) for p, parent, comm in rows if int(parent) == pid and "tritonserver" in comm]


def test_serve_starts_triton_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, console_port = free_port(), free_port()
    env = {
        **os.environ,
        "DRIFTWISE_SERVER__PORT": str(port),
        "DRIFTWISE_DATA_DIR": str(tmp_path),
        "DRIFTWISE_CONSOLE__PORT": str(console_port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftwise.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=240)
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="driftwise.v1.IngestService"))
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        tritons = tritonserver_children(proc.pid)
        assert len(tritons) == 1, "serve runs its own Triton as a child process"
        # the console it hosts reads it: the model status comes from this very server
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/api/model", timeout=30) as answer:
            assert answer.status == 200 and b'"models"' in answer.read()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
        assert f"serving on 127.0.0.1:{port}" in output
        assert f"driftwise console on http://127.0.0.1:{console_port}/" in output
        time.sleep(0.5)
        assert not Path(f"/proc/{tritons[0]}").exists(), "Triton must be stopped with the server"
        assert (tmp_path / "events.sqlite").exists() and (tmp_path / "triton.log").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"DRIFTWISE_AUTH__ENABLED": "true", "DRIFTWISE_AUTH__TOKENS_FILE": "missing-tokens.toml"},
            "auth.tokens_file",
        ),
        (
            {"DRIFTWISE_TLS__CERT_FILE": "missing.crt", "DRIFTWISE_TLS__KEY_FILE": "missing.key"},
            "tls.key_file",
        ),
        (
            {
                "DRIFTWISE_PRIVACY__PSEUDONYMISE_USER_IDS": "true",
                "DRIFTWISE_PRIVACY__USER_ID_KEY_FILE": "missing.key",
            },
            "user id key file",
        ),
        (
            {
                "DRIFTWISE_MILVUS__URI": "http://127.0.0.1:1",
                "DRIFTWISE_MILVUS__TLS_CA_FILE": "missing-ca.crt",
            },
            "milvus.tls_ca_file missing-ca.crt",
        ),
        (
            {"DRIFTWISE_CONSOLE__PORT": "0", "DRIFTWISE_CONSOLE__TOKEN_FILE": "missing-token"},
            "console: missing-token",
        ),
    ],
)
def test_serve_refuses_a_missing_file_at_once_with_a_clear_message(
    tmp_path: Path, setting: dict[str, str], message: str
) -> None:
    """Before Triton or Milvus start: no child left, no traceback, exit status 2."""
    env = {
        **os.environ,
        "DRIFTWISE_SERVER__PORT": str(free_port()),
        "DRIFTWISE_DATA_DIR": str(tmp_path),
        **setting,
    }
    done = subprocess.run(
        [sys.executable, "-m", "driftwise.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "driftwise serve: cannot start:" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "triton.log").exists(), "refused before the local Triton started"
    assert not (tmp_path / "events.sqlite").exists() and not (tmp_path / "milvus.db").exists()
