"""A crashed `driftwise serve` leaves no Triton behind (docs/reliability/shutdown.md, "Crash").

`driftwise serve` runs as an operator runs it (its own local Triton, free port, a temporary data
directory) in a session of its own, and its process group gets SIGKILL, as from the OOM killer or
a `kill -9`. Asserted within a bounded wait: no process of its Triton's group (tritonserver, the
python-backend stubs) is left, nor its work directory in /tmp or its /dev/shm regions. And a
Triton that survives anyway (here one stopped with SIGSTOP, so that it cannot act on its death
signal: a hung one) is stopped by the next start on the same data directory, its files removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.integration

CLEANUP_BOUND_S = 30.0  # Triton's own shutdown on SIGTERM takes about 5 s here (model unloading)
RECORD = "local-triton.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state on ([0] state, [1] ppid, [2] pgrp), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def live_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and alive(int(name))]


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


@dataclass
class TritonFamily:
    """A serve process's local Triton: its process group, work directory and shared memory."""

    leader: int
    members: list[int]  # the group: tritonserver and its python stubs
    workdir: Path
    shm: set[Path]

    @classmethod
    def of(cls, serve_pid: int) -> TritonFamily:
        leaders = [
            pid
            for pid in live_pids()
            if (fields := stat_fields(pid)) and int(fields[1]) == serve_pid and "tritonserver" in cmdline(pid)
        ]
        assert len(leaders) == 1, f"serve runs one Triton as a child process: {leaders}"
        leader = leaders[0]
        members = [pid for pid in live_pids() if (fields := stat_fields(pid)) and int(fields[2]) == leader]
        shm = set()
        for pid in members:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                    if line.split()[-1].startswith("/dev/shm/triton_python_backend"):
                        shm.add(Path(line.split()[-1]))
        return cls(leader, members, Path(os.readlink(f"/proc/{leader}/cwd")), shm)

    def stubs(self) -> list[int]:
        return [pid for pid in self.members if "triton_python_backend_stub" in cmdline(pid)]

    def leftovers(self) -> list[str]:
        """What is left of it: live processes of its group or naming its work directory (the
        watchdog that removes it), the work directory, shared-memory regions."""
        left = [
            f"pid {pid}: {cmdline(pid)[:150]}"
            for pid in live_pids()
            if (fields := stat_fields(pid))
            and (int(fields[2]) == self.leader or str(self.workdir) in cmdline(pid))
        ]
        left += [str(path) for path in [self.workdir, *sorted(self.shm)] if path.exists()]
        return left

    def wait_gone(self, timeout_s: float) -> tuple[list[str], float]:
        """Poll until nothing is left or `timeout_s` passed: what is left, and the seconds waited."""
        started = time.monotonic()
        while (left := self.leftovers()) and time.monotonic() - started < timeout_s:
            time.sleep(0.2)
        return left, time.monotonic() - started

    def kill(self) -> None:
        """After a failure: leave nothing running or lying around (its processes are those whose
        command line names its work directory: the group id may be reused once they are gone)."""
        for pid in live_pids():
            if str(self.workdir) in cmdline(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)
        for path in self.shm:
            path.unlink(missing_ok=True)


class Serve:
    """`driftwise serve` on a free port and `data_dir`, in a session of its own."""

    def __init__(self, data_dir: Path, output: Path) -> None:
        self.port = free_port()
        self.output = output
        env = {**os.environ, "DRIFTWISE_SERVER__PORT": str(self.port), "DRIFTWISE_DATA_DIR": str(data_dir)}
        with open(output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "driftwise.cli", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_serving(self, timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            ready = grpc.channel_ready_future(channel)
            while not ready.done():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    ready.cancel()
                    pytest.fail(f"serve did not start ({self.proc.returncode}); output:\n{self.text()}")
                time.sleep(0.2)
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="driftwise.v1.IngestService"))
            assert status.status == health_pb2.HealthCheckResponse.SERVING

    def crash(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the serve process group, as a crash would
        self.proc.wait()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_a_crashed_serve_takes_its_triton_and_files_with_it(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data", tmp_path / "serve.out")
    family = None
    try:
        serve.wait_serving()
        family = TritonFamily.of(serve.proc.pid)
        # the scenario has all there is to leak: a server, its stubs, a work directory, regions
        assert family.stubs() and family.workdir.is_dir() and family.shm, family
        serve.crash()
        left, waited = family.wait_gone(CLEANUP_BOUND_S)
        assert left == [], f"left {CLEANUP_BOUND_S:.0f} s after the crash: {left}"
        print(
            f"\nFIGURES crash: Triton's group, work directory and regions gone {waited:.1f} s after SIGKILL"
        )
    finally:
        serve.close()
        if family is not None:
            family.kill()


def test_the_next_start_stops_a_triton_that_survived_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Serve(data, tmp_path / "first.out")
    second = None
    families: list[TritonFamily] = []
    try:
        first.wait_serving()
        stale = TritonFamily.of(first.proc.pid)
        families.append(stale)
        os.kill(stale.leader, signal.SIGSTOP)  # hung: it cannot act on the death signal
        first.crash()
        time.sleep(2.0)
        assert alive(stale.leader) and all(alive(pid) for pid in stale.stubs()), "Triton survived the crash"
        assert (data / RECORD).is_file(), "the crashed server's record of its Triton"

        second = Serve(data, tmp_path / "second.out")
        second.wait_serving()
        # the sweep runs before the new Triton starts: nothing of the stale one is left now
        assert stale.leftovers() == [], second.text()
        assert f"cleaned up after a local Triton left by driftwise pid {first.proc.pid}" in second.text()
        fresh = TritonFamily.of(second.proc.pid)
        families.append(fresh)
        assert f'"pid": {fresh.leader},' in (data / RECORD).read_text()

        second.proc.send_signal(signal.SIGTERM)  # a clean stop removes the record
        assert second.proc.wait(60) == 0, second.text()
        assert not (data / RECORD).exists()
        assert fresh.wait_gone(CLEANUP_BOUND_S)[0] == []
    finally:
        first.close()
        if second is not None:
            second.close()
        for family in families:
            family.kill()
