"""Run the real Milvus standalone server of the PyPI package ``milvus`` (2.3.5) as a child process.

Why: production stores vectors in a Milvus server, which differs from Milvus Lite (the embedded
default) in ways that matter (consistency levels, index parameters, upsert semantics). This
"local Milvus" lets tests and the serving benchmark run the production code path on one machine,
the way :mod:`driftwise.inference.triton_server` does for Triton. The package is a dev dependency
(``pip install -e .[dev]``); it is imported only by :meth:`LocalMilvusServer.start`.

Launch recipe (what the package's ``milvus-server`` command does, minus its Python wrapper, so
that there is one process to stop and every port is chosen here):

* the package keeps the ``milvus`` binary and its libraries LZMA-compressed; they are unpacked
  into ``<data_dir>/bin`` (about 250 MB and 5 s, skipped when already unpacked there);
* ``milvus.MilvusServerConfig`` renders ``<data_dir>/configs/milvus.yaml`` from the package's
  template with every ``*_port`` given (free ports picked here: proxy, proxy internal, the
  coordinators and nodes), each role's ``ip`` set to 127.0.0.1 (the address it registers and
  dials), and etcd, local storage, rocksmq and logs under ``data_dir``;
* the embedded etcd would listen on 127.0.0.1:2379 and :2380 whatever the template says, so a
  second instance could not start: ``ETCD_CONFIG_PATH`` names an etcd config with free ports;
* the metrics and health HTTP server's port is ``METRICS_PORT`` (default 9091), also free here;
* ``milvus run standalone`` in its own session, cwd and ``MILVUSCONF`` at the data directory,
  ``LD_LIBRARY_PATH`` at the unpacked libraries, and a minimal environment (Milvus reads any
  environment variable named like a config key, e.g. ``PROXY_PORT``, as an override).

TLS (``tls=MilvusServerTls(...)``): Milvus's ``common.security.tlsMode`` 1 (one-way: the server's
certificate and key) or 2 (mutual: also the CA that signs client certificates), with
``tls.serverPemPath``, ``tls.serverKeyPath`` and ``tls.caPemPath``. It covers the proxy's gRPC port
(what clients use); the coordinators' ports and the metrics/health HTTP port stay plaintext, so
the readiness check is unchanged except that its client connects with the given client TLS.

What cannot be changed: Milvus 2.3 listens on all interfaces (``:port``) for gRPC (proxy,
coordinators, nodes) and the metrics/health HTTP server; only etcd is on loopback. Authorisation
is off: any token (``root:Milvus`` here) is accepted. Run it on trusted machines only.

Stopping: on SIGTERM Milvus cleans up within milliseconds and logs "All cleanup done", then the
process often hangs instead of exiting. :meth:`LocalMilvusServer.stop` waits for the exit or that
line (``stop_timeout_s`` at most), then SIGKILLs the process group and reaps it. Milvus keeps
unflushed writes in its rocksmq log in the data directory (replayed at the next start; not
checked here after a SIGKILL). A restart in the same data directory waits for the previous run's
etcd sessions to expire (about 25 s with the 10 s session TTL set here; 55 s with the default).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftwise.supervision import ProcessGroupServer

__all__ = ["LocalMilvusServer", "MilvusServerTls", "MilvusStartError"]

_log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_TOKEN = "root:Milvus"
_ROLES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
_CLEANUP_DONE = b"All cleanup done"
# A restart in the same data directory waits until the previous run's sessions in etcd expire
# (Milvus default 30 s, about 55 s in all); 10 s still leaves keep-alives (every ttl/3) slack.
_SESSION_TTL_S = 10
_LOG_TAIL_BYTES = 8000
_POLL_INTERVAL_S = 0.2
# Environment variables passed on to the server; anything else could override a config key.
_INHERITED_ENV = ("HOME", "LANG", "LC_ALL", "PATH", "TMPDIR", "TZ", "USER")


class MilvusStartError(RuntimeError):
    """Milvus did not become ready (early exit, timeout, package missing); includes the log tail."""


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now, on every interface (Milvus binds ``:port``)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _try_bind_reusable(port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


def _milvus_package() -> Any:
    try:
        return importlib.import_module("milvus")
    except ImportError as exc:
        raise MilvusStartError(
            "the 'milvus' package (Milvus standalone) is not installed: pip install milvus==2.3.5 "
            "(it is in the dev extra)"
        ) from exc


@dataclass(frozen=True)
class MilvusServerTls:
    """The server side of TLS: its certificate and key; client_ca_file set: mutual TLS (tlsMode 2).

    ``client`` holds what the readiness check's MilvusClient passes (pymilvus TLS arguments),
    e.g. ``driftwise.storage.milvus_tls.MilvusTls(...).client_kwargs()``; empty: the check
    trusts the system roots."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client: tuple[tuple[str, Any], ...] = ()

    @property
    def mode(self) -> int:
        return 2 if self.client_ca_file is not None else 1


class LocalMilvusServer(ProcessGroupServer):
    """A Milvus standalone child process on free ports, keeping everything in ``data_dir``.

    ``data_dir`` holds the unpacked binary, the rendered config, etcd, segments, rocksmq and the
    logs (the server's own output goes to ``log_path``, default ``<data_dir>/logs/milvus.log``).
    Reusing a data directory keeps the collections. ``port`` 0 picks a free proxy port at start.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        startup_timeout_s: float = 120.0,
        stop_timeout_s: float = 5.0,
        log_path: Path | None = None,
        tls: MilvusServerTls | None = None,
    ) -> None:
        self._data_dir = Path(data_dir).resolve()
        self._tls = tls
        self._requested_port = port
        self._port: int | None = None
        self._metrics_port: int | None = None
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._log_path = Path(log_path) if log_path is not None else self._data_dir / "logs" / "milvus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        """Seconds from spawning the process until a client could connect (set by start)."""

    # ------------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT``: what ``MilvusClient(uri=...)`` and ``MilvusSettings.uri`` take."""
        if self._port is None:
            if self._requested_port:
                return f"http://{_HOST}:{self._requested_port}"
            raise RuntimeError("the port is chosen at start(); uri is known only after it")
        return f"http://{_HOST}:{self._port}"

    @property
    def token(self) -> str:
        """The default credentials; accepted but not checked (authorisation is off)."""
        return _TOKEN

    @property
    def health_url(self) -> str:
        if self._metrics_port is None:
            raise RuntimeError("the metrics port is chosen at start()")
        return f"http://{_HOST}:{self._metrics_port}/healthz"

    @property
    def log_path(self) -> Path:
        return self._log_path

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the server and block until a MilvusClient can list collections. Raises
        :class:`MilvusStartError` (the child killed) on early exit or timeout."""
        if self._process is not None:
            raise RuntimeError("server already started")
        started = time.monotonic()
        try:
            self._spawn()
            self._wait_until_ready(started + self._startup_timeout_s)
        except BaseException:
            self._kill_now()
            raise
        self.startup_seconds = time.monotonic() - started
        _log.info("milvus ready in %.1f s at %s (data %s)", self.startup_seconds, self.uri, self._data_dir)

    def _spawn(self) -> None:
        """Unpack the binary, write the configs, start the process."""
        package = _milvus_package()
        ports, etcd_peer_port = self._write_milvus_config(package)
        package._initialize_data_files(str(self._data_dir))  # no-op when already unpacked
        etcd_client = f"http://{_HOST}:{ports['etcd_port']}"
        etcd_config = self._write_etcd_config(etcd_client, f"http://{_HOST}:{etcd_peer_port}")
        bin_dir = self._data_dir / "bin"
        env = self._environment(etcd_config, bin_dir)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [str(bin_dir / "milvus"), "run", "standalone"]
        process = self._start_in_own_group(command, env, self._data_dir, self._log_path)
        _log.info(
            "started milvus pid %d on %s (etcd %s, metrics %d), log %s",
            process.pid,
            self.uri,
            etcd_client,
            self._metrics_port,
            self._log_path,
        )

    def _write_milvus_config(self, package: Any) -> tuple[dict[str, int], int]:
        """Render configs/milvus.yaml with free ports (the proxy's as requested), loopback roles
        and TLS, and note the proxy and metrics ports; return the ports by config key and the
        etcd peer port."""
        config = package.MilvusServerConfig(data_dir=str(self._data_dir))
        port_keys = sorted(key for key in config.configurable_items if key.endswith("_port"))
        free = iter(_free_ports(len(port_keys) + 3))
        ports = {key: next(free) for key in port_keys}
        if self._requested_port:
            ports["proxy_port"] = self._requested_port
        etcd_peer_port, self._metrics_port = next(free), next(free)
        config.update(**ports)
        for role in _ROLES:
            config.set(f"{role}.ip", _HOST)
        config.set("common.session.ttl", _SESSION_TTL_S)
        if self._tls is not None:
            # template items: common.security.tlsMode, tls.serverPemPath / serverKeyPath / caPemPath
            # (set() ignores a value of the wrong type: int and str here)
            config.set("tls_mode", self._tls.mode)
            config.set("server_pem_path", str(Path(self._tls.cert_file).resolve()))
            config.set("server_key_path", str(Path(self._tls.key_file).resolve()))
            if self._tls.client_ca_file is not None:
                config.set("ca_pem_path", str(Path(self._tls.client_ca_file).resolve()))
        # resolve() test-binds every port without SO_REUSEADDR, so a restart on the same port
        # fails while the previous run's connections linger in TIME_WAIT (60 s); Milvus itself
        # (Go) binds with SO_REUSEADDR, and so does this check now
        config.try_bind_port = _try_bind_reusable
        config.resolve()  # checks every port binds, writes configs/milvus.yaml, makes the dirs
        self._port = int(config.get("proxy_port"))
        return ports, etcd_peer_port

    def _write_etcd_config(self, etcd_client: str, etcd_peer: str) -> Path:
        """The embedded etcd's config on the given URLs (its defaults, :2379 and :2380, would
        keep a second instance from starting)."""
        etcd_config = self._data_dir / "configs" / "embedEtcd.yaml"
        etcd_config.write_text(
            f"name: default\n"
            f"listen-client-urls: {etcd_client}\n"
            f"advertise-client-urls: {etcd_client}\n"
            f"listen-peer-urls: {etcd_peer}\n"
            f"initial-advertise-peer-urls: {etcd_peer}\n"
            f"initial-cluster: default={etcd_peer}\n"
            "quota-backend-bytes: 4294967296\n"
            "auto-compaction-mode: revision\n"
            "auto-compaction-retention: '1000'\n"
        )
        return etcd_config

    def _environment(self, etcd_config: Path, bin_dir: Path) -> dict[str, str]:
        """A minimal environment: Milvus reads any variable named like a config key as an override."""
        env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        env.update(
            DEPLOY_MODE="STANDALONE",
            MILVUSCONF=str(self._data_dir / "configs"),
            ETCD_CONFIG_PATH=str(etcd_config),
            METRICS_PORT=str(self._metrics_port),
            MILVUS_RUN_DIR=str(self._data_dir / "run"),
            LD_LIBRARY_PATH=str(bin_dir),
        )
        return env

    def stop(self) -> None:
        """SIGTERM the server, wait for its exit or its "cleanup done" line (``stop_timeout_s`` at
        most), then SIGKILL the process group and reap it. Idempotent."""
        process = self._process
        if process is None:
            return
        if not self._leader_exited():
            offset = self._log_size()
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self._stop_timeout_s
            while not self._leader_exited() and time.monotonic() < deadline:
                if self._log_contains(_CLEANUP_DONE, offset):
                    break
                time.sleep(0.05)
            else:
                if not self._leader_exited():
                    _log.info(
                        "milvus pid %d still up %.0f s after SIGTERM (usual); killing it",
                        process.pid,
                        self._stop_timeout_s,
                    )
        self._kill_now()

    # ------------------------------------------------------------------ internals

    def _log_size(self) -> int:
        try:
            return self._log_path.stat().st_size
        except OSError:
            return 0

    def _log_contains(self, marker: bytes, offset: int) -> bool:
        try:
            with open(self._log_path, "rb") as log:
                log.seek(offset)
                return marker in log.read()
        except OSError:
            return False

    def _log_tail(self) -> str:
        size = self._log_size()
        if not size:
            return "(no log)"
        with open(self._log_path, "rb") as log:
            log.seek(max(0, size - _LOG_TAIL_BYTES))
            return log.read().decode("utf-8", errors="replace")

    def _fail(self, reason: str) -> MilvusStartError:
        return MilvusStartError(
            f"{reason} (data {self._data_dir}, log {self._log_path}); log tail:\n{self._log_tail()}"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2.0) as response:
                return b"OK" in response.read()
        except (OSError, urllib.error.URLError):
            return False

    def _client_connects(self) -> bool:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        try:
            tls = dict(self._tls.client) if self._tls is not None else {}
            client = MilvusClient(uri=self.uri, token=self.token, timeout=5.0, dedicated=True, **tls)
        except MilvusException:
            return False
        try:
            client.list_collections()
            return True
        except MilvusException:
            return False
        finally:
            client.close()

    def _wait_until_ready(self, deadline: float) -> None:
        while True:
            if self._leader_exited():
                code = self._process.wait() if self._process is not None else None
                raise self._fail(f"milvus exited with code {code} during startup")
            if time.monotonic() >= deadline:
                raise self._fail(f"milvus not ready after {self._startup_timeout_s:.0f} s")
            if self._healthy() and self._client_connects():
                return
            time.sleep(_POLL_INTERVAL_S)
