"""A local server run as the leader of its own process group (Triton, Milvus for tests).

Both servers start helpers of their own (Triton's python-backend stubs, Milvus's etcd), and both
can hang on SIGTERM; stopping them means signalling the whole group while the unreaped leader
still reserves the group id, then reaping it. Subclasses start `_process` with
`start_new_session=True` and implement `start` and `stop`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self


class ProcessGroupServer:
    _process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when not running."""
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and not self._leader_exited()

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

    def __del__(self) -> None:
        # Last resort: never leave a server behind when the owner forgot stop().
        if getattr(self, "_process", None) is not None:
            with contextlib.suppress(Exception):
                self._kill_now()

    def _start_in_own_group(
        self, command: list[str], env: dict[str, str], cwd: Path, log_path: Path
    ) -> subprocess.Popen[bytes]:
        """Start the server in a process group of its own, output appended to `log_path`."""
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        return self._process

    def _leader_exited(self) -> bool:
        """True once the server process has exited; does not reap it (keeps its pgid valid)."""
        process = self._process
        if process is None or process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _signal_group(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _kill_now(self) -> None:
        """SIGKILL the whole group while the unreaped leader still holds its id; reap."""
        if self._process is not None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()
            self._process = None
