"""Run the real ``tritonserver`` binary shipped in ``nvidia-pytriton`` as a child process.

This is the "local Triton" used by tests, benchmarks and the all-in-one dev server; production
runs Triton in its own container on the same ``model_repository/``. Where the binary, the python
backend and its stub are and the environment they need: :mod:`driftwise.inference.triton_toolchain`.

A broken stub makes Triton hang at "loading" instead of failing, so :meth:`LocalTritonServer.start`
waits for readiness with a deadline and kills the server when it passes.

By default every model in the repository is loaded (Triton's ``none`` model control mode). Given
``models``, the server runs in ``explicit`` mode with one ``--load-model`` per name and is ready
when exactly those are; ``config_name`` selects Triton's custom model configurations
(``<model>/configs/<name>.pbtxt``, falling back to ``config.pbtxt``).

The server dies with the process that started it, even one killed by SIGKILL: it gets SIGTERM
then (``PR_SET_PDEATHSIG``, :mod:`driftwise.parent_death`), and a watchdog started beside it
removes its work directory and shared memory once its process group is gone. ``record_path`` (what
``driftwise serve`` uses) also records it in the data directory, so that the next start there
stops one that survived anyway (:mod:`driftwise.inference.triton_record`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftwise.inference.triton_record import (
    WORKDIR_PREFIX,
    TritonRecord,
    remove_shm_regions,
    shm_regions,
    sweep_stale_triton,
)
from driftwise.inference.triton_toolchain import TritonStartError, TritonToolchain, find_toolchain
from driftwise.supervision import ProcessGroupServer, process_start_time

__all__ = ["LocalTritonServer", "TritonStartError"]

_log = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 8000
_POLL_INTERVAL_S = 0.2
_POLL_CHANNEL_ARGS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def _free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports free on ``host`` now (all bound at once, so never equal)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalTritonServer(ProcessGroupServer):
    """A ``tritonserver`` child process serving ``model_repository`` on loopback.

    Ports given as 0 are replaced by free ports chosen at :meth:`start`. Server output goes to
    ``log_path`` or, if None, to a temporary file that :meth:`stop` removes (a failed
    :meth:`start` keeps it and names it in the error); never to a pipe.

    ``models``: None serves every model folder in the repository; a sequence serves only those
    (``--model-control-mode=explicit --load-model=NAME ...``), and :meth:`start` waits for exactly
    them. ``config_name``: passed as ``--model-config-name`` (Triton then reads
    ``<model>/configs/<config_name>.pbtxt`` where it exists, ``config.pbtxt`` elsewhere).

    ``record_path``: a file naming the running server (:class:`TritonRecord`), written at each
    start and removed by :meth:`stop`; :meth:`start` first stops the server a crashed owner left
    there (:func:`sweep_stale_triton`).
    """

    def __init__(
        self,
        model_repository: Path,
        *,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        startup_timeout_s: float = 180.0,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        models: Sequence[str] | None = None,
        config_name: str | None = None,
        poll_credentials: Any = None,
        record_path: Path | None = None,
    ) -> None:
        if isinstance(models, str):
            raise TypeError("models must be a sequence of model names, not a single str")
        self._models = tuple(dict.fromkeys(models)) if models is not None else None
        for name in self._models or ():
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"invalid model name {name!r}")
        if config_name is not None and (not config_name or "/" in config_name):
            raise ValueError(f"invalid config_name {config_name!r}")
        self._config_name = config_name
        self._model_repository = Path(model_repository).resolve()
        self._host = host
        self._requested_ports = (grpc_port, http_port, metrics_port)
        self._ports: tuple[int, int, int] | None = None
        self._startup_timeout_s = startup_timeout_s
        self._requested_log_path = Path(log_path) if log_path is not None else None
        self._log_path: Path | None = None
        self._owns_log = False
        self._extra_args = tuple(extra_args)
        # grpc.ChannelCredentials of the readiness poll, for a server started with TLS in
        # extra_args (--grpc-use-ssl...); None: plaintext. Driftwise's own local Triton is
        # plaintext on loopback; TLS-serving local servers are for tests of the client side.
        self._poll_credentials = poll_credentials
        self._record_path = Path(record_path) if record_path is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        # the python backend's shared-memory regions are named after this prefix: a SIGKILLed
        # server leaves them in /dev/shm, and only the prefix tells ours from other servers'
        # (the form triton_record.SHM_PREFIX_PATTERN accepts)
        self._shm_prefix = f"triton_python_backend_shm_region_driftwise-{uuid.uuid4().hex[:12]}_"
        self._cancel_start = threading.Event()
        self.startup_seconds: float | None = None
        """Seconds from spawning the process until every model was ready (set by start)."""

    # ------------------------------------------------------------------ properties

    @property
    def model_repository(self) -> Path:
        return self._model_repository

    @property
    def models(self) -> tuple[str, ...] | None:
        """The models loaded explicitly, or None for every model in the repository."""
        return self._models

    @property
    def config_name(self) -> str | None:
        """Triton's ``--model-config-name`` (custom model configuration), None for config.pbtxt."""
        return self._config_name

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the KServe v2 gRPC endpoint (what tritonclient.grpc expects)."""
        return f"{self._host}:{self._port(0)}"

    @property
    def http_url(self) -> str:
        return f"{self._host}:{self._port(1)}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._host}:{self._port(2)}/metrics"

    @property
    def log_path(self) -> Path | None:
        """Where the server's stdout and stderr go (None before start)."""
        return self._log_path

    @property
    def shm_prefix(self) -> str:
        """Name prefix of this server's python-backend shared-memory regions in /dev/shm."""
        return self._shm_prefix

    def _port(self, index: int) -> int:
        if self._ports is None:
            requested = self._requested_ports[index]
            if requested:
                return requested
            raise RuntimeError("ports chosen at run time are known only after start()")
        return self._ports[index]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the server and block until it is live and every model to serve (``models``, or
        all in the repository) is ready. Raises :class:`TritonStartError` (the child killed) on
        early exit or timeout."""
        if self._process is not None:
            raise RuntimeError("server already started")
        if self._cancel_start.is_set():
            raise TritonStartError("start cancelled (shutting down)")
        if not self._model_repository.is_dir():
            raise TritonStartError(f"model repository not found: {self._model_repository}")
        missing = sorted(set(self._models or ()) - self._repository_models())
        if missing:
            raise TritonStartError(
                f"models {missing} not in {self._model_repository} "
                f"(it has {sorted(self._repository_models())})"
            )
        toolchain = find_toolchain()
        if self._record_path is not None:
            sweep_stale_triton(self._record_path)
        try:
            started = self._spawn(toolchain)
            self._wait_until_ready(started + self._startup_timeout_s)
        except BaseException:
            self._kill_now()
            self._owns_log = False  # keep the log: the error names it
            raise
        self.startup_seconds = time.monotonic() - started
        _log.info(
            "tritonserver ready in %.1f s (grpc %s, http %s, metrics %s)",
            self.startup_seconds,
            self.grpc_url,
            self.http_url,
            self.metrics_url,
        )

    def restart(self) -> None:
        """Start again after the server died: what is left of its process group (python stubs)
        is killed and reaped, its shared memory removed, and it starts on the same ports (a
        client's channel reconnects to it) and appends to the same log. Blocks like start."""
        self._kill_now()
        self.start()

    def cancel_start(self) -> None:
        """Make a start or restart running in another thread give up within a poll interval
        (TritonStartError, the child killed), and any later one fail: shutdown does not wait
        for a model to load."""
        self._cancel_start.set()

    def _spawn(self, toolchain: TritonToolchain) -> float:
        """Prepare the backend directory and log, start the process; return its start time."""
        self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        backend_dir = toolchain.make_backend_dir(self._workdir)
        log_path = self._prepare_log()
        command = self._command(toolchain, backend_dir, self._choose_ports())
        env = toolchain.child_environment()
        started = time.monotonic()
        # the python backend stubs join its group: stop() kills them too. SIGTERM when this
        # process dies: Triton then stops its stubs and removes their shared memory itself (a
        # SIGKILLed Triton's stubs live on until it is reaped, its regions until they exit)
        process = self._start_in_own_group(
            command,
            env,
            self._workdir,
            log_path,
            death_signal=signal.SIGTERM,
            remove_after=[str(self._workdir), shm_regions(self._shm_prefix)],
        )
        _log.info("started tritonserver pid %d: %s", process.pid, " ".join(command))
        if self._record_path is not None:
            self._write_record(self._record_path, process.pid)
        return started

    def _prepare_log(self) -> Path:
        """The server's log file: the requested one, or a temporary one that stop() removes."""
        if self._requested_log_path is not None:
            self._log_path = self._requested_log_path
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._owns_log = False
        elif self._owns_log and self._log_path is not None:
            pass  # a restart appends to the temporary log of the first run
        else:
            handle, name = tempfile.mkstemp(prefix="driftwise-tritonserver-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
            self._owns_log = True
        return self._log_path

    def _choose_ports(self) -> tuple[int, int, int]:
        """Free ports for those requested as 0; a restart keeps the ports of the first start."""
        if self._ports is None:
            free = iter(_free_ports(self._host, 3))
            grpc_req, http_req, metrics_req = self._requested_ports
            self._ports = (grpc_req or next(free), http_req or next(free), metrics_req or next(free))
        return self._ports

    def _command(
        self, toolchain: TritonToolchain, backend_dir: Path, ports: tuple[int, int, int]
    ) -> list[str]:
        """The tritonserver command line: addresses and ports, the models to load, extra_args last."""
        grpc_port, http_port, metrics_port = ports
        command = [
            str(toolchain.binary),
            f"--model-repository={self._model_repository}",
            f"--backend-directory={backend_dir}",
            "--disable-auto-complete-config",
            f"--grpc-address={self._host}",
            f"--grpc-port={grpc_port}",
            f"--http-address={self._host}",
            f"--http-port={http_port}",
            f"--metrics-address={self._host}",
            f"--metrics-port={metrics_port}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        ]
        if self._models is not None:
            command.append("--model-control-mode=explicit")
            command.extend(f"--load-model={name}" for name in self._models)
        if self._config_name is not None:
            command.append(f"--model-config-name={self._config_name}")
        command.extend(self._extra_args)
        return command

    def _write_record(self, record_path: Path, pid: int) -> None:
        """Name the server started as `pid` in record_path, for the next start to sweep after a crash."""
        TritonRecord(
            pid=pid,
            shm_prefix=self._shm_prefix,
            workdir=str(self._workdir),
            owner_pid=os.getpid(),
            owner_start_time=process_start_time(os.getpid()) or 0,
        ).write(record_path)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the server, wait up to ``timeout_s``, then SIGKILL its process group.
        Idempotent."""
        process = self._process
        if process is not None:
            if not self._leader_exited():
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + timeout_s
                while not self._leader_exited() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not self._leader_exited():
                    _log.warning("tritonserver pid %d ignored SIGTERM; killing it", process.pid)
            # Kill whatever is left of the group (a hung server, orphaned python stubs) while
            # the unreaped leader still reserves the group id, then reap.
            self._signal_group(signal.SIGKILL)
            process.wait()
            self._process = None
            self._stop_watchdog()
            self._forget(process.pid)
        self._cleanup_workdir()
        self._remove_shm()
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._owns_log = False

    # ------------------------------------------------------------------ internals

    def _kill_now(self) -> None:
        pid = self.pid
        super()._kill_now()
        if pid is not None:
            self._forget(pid)
        self._cleanup_workdir()
        self._remove_shm()

    def _forget(self, pid: int) -> None:
        """Remove the record of the stopped server `pid` (not a record another server wrote since)."""
        if self._record_path is not None:
            record = TritonRecord.read(self._record_path)
            if record is not None and record.pid == pid and record.owner_pid == os.getpid():
                self._record_path.unlink(missing_ok=True)

    def _remove_shm(self) -> None:
        """Remove the shared-memory regions a killed server left (a clean exit removes them)."""
        remove_shm_regions(self._shm_prefix)

    def _cleanup_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        with open(self._log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - _LOG_TAIL_BYTES))
            return log.read().decode("utf-8", errors="replace")

    def _fail(self, reason: str) -> TritonStartError:
        return TritonStartError(
            f"{reason} (model repository {self._model_repository}, log {self._log_path}); "
            f"log tail:\n{self._log_tail()}"
        )

    def _repository_models(self) -> set[str]:
        return {
            entry.name
            for entry in self._model_repository.iterdir()
            if entry.is_dir() and (entry / "config.pbtxt").is_file()
        }

    def _wait_until_ready(self, deadline: float) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        expected = self._repository_models() if self._models is None else set(self._models)
        explicit = self._models is not None
        # polled from before the server listens: with gRPC's default reconnect backoff (growing
        # to minutes) readiness was seen up to 8 s late on a restart; cap it at 0.5 s
        client = grpcclient.InferenceServerClient(
            self.grpc_url, creds=self._poll_credentials, channel_args=_POLL_CHANNEL_ARGS
        )
        try:
            while True:
                if self._leader_exited():
                    code = self._process.wait() if self._process is not None else None
                    raise self._fail(f"tritonserver exited with code {code} during startup")
                if self._cancel_start.is_set():
                    raise self._fail("start cancelled (shutting down)")
                if time.monotonic() >= deadline:
                    raise self._fail(
                        f"tritonserver not ready after {self._startup_timeout_s:.0f} s "
                        "(a broken python stub hangs at model loading)"
                    )
                try:
                    live = client.is_server_live(client_timeout=1.0)
                    if live and self._models_ready(client, expected, explicit):
                        return
                except InferenceServerException:
                    pass  # not listening yet, or still loading
                time.sleep(_POLL_INTERVAL_S)
        finally:
            client.close()

    @staticmethod
    def _models_ready(client: Any, expected: set[str], explicit: bool) -> bool:
        names = set(expected)
        if not explicit:  # every model Triton found, even one without a config.pbtxt
            index = client.get_model_repository_index(as_json=True, client_timeout=2.0)
            names |= {str(model["name"]) for model in index.get("models", [])}
        return all(client.is_model_ready(name, client_timeout=2.0) for name in sorted(names))
