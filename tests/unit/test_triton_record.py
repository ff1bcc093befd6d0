"""The record of a local Triton in the data directory, and the sweep of a stale one.

No Triton here (tests/integration/test_crash_cleanup.py has the real one): a Python process in a
session of its own stands in for a stale tritonserver. The sweep knows a Triton by its process
group and its shared-memory prefix on the command line, and the stand-in has both.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwise.inference.triton_record import TritonRecord, sweep_stale_triton
from driftwise.supervision import process_start_time

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

IGNORE_SIGTERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def prefix() -> Iterator[str]:
    """A shm prefix of the form LocalTritonServer uses; its regions removed after the test."""
    value = f"triton_python_backend_shm_region_driftwise-{uuid.uuid4().hex[:12]}_"
    yield value
    for path in Path("/dev/shm").glob(f"{value}*"):
        path.unlink()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def stand_in(processes: list[subprocess.Popen[bytes]], prefix: str, setup: str = "") -> int:
    """A stale 'tritonserver': the leader of its own group, the prefix on its command line. Returns
    once it has run `setup`."""
    code = f"{setup}\nimport time\nprint('ready', flush=True)\ntime.sleep(600)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, f"--backend-config=python,shm-region-prefix-name={prefix}"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    processes.append(proc)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc.pid


def dead_pid() -> int:
    proc = subprocess.Popen(["/bin/true"])
    proc.wait()
    return proc.pid


def leftovers(tmp_path: Path, prefix: str) -> tuple[Path, Path]:
    """A work directory and a shared-memory region, as a killed server leaves them."""
    workdir = tmp_path / "driftwise-triton-abc123"
    (workdir / "backends").mkdir(parents=True)
    region = Path("/dev/shm") / f"{prefix}0f1e"
    region.write_bytes(b"\0" * 16)
    return workdir, region


def record(pid: int, prefix: str, workdir: Path, owner: int | None = None) -> TritonRecord:
    owner = dead_pid() if owner is None else owner
    return TritonRecord(pid, prefix, str(workdir), owner, process_start_time(owner) or 12345)


def test_a_record_reads_back_as_written(tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "local-triton.json"
    written = record(4321, prefix, tmp_path / "driftwise-triton-x")
    written.write(path)
    assert TritonRecord.read(path) == written
    assert [p.name for p in tmp_path.iterdir()] == ["local-triton.json"]  # no partial file left


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"pid": 1}',
        # it names what to kill and delete: only what a LocalTritonServer writes is taken
        '{"pid": 1, "shm_prefix": "x", "workdir": "/tmp/driftwise-triton-a", "owner_pid": 2,'
        ' "owner_start_time": 3}',
        '{"pid": 1, "shm_prefix": "triton_python_backend_shm_region_driftwise-0123456789ab_",'
        ' "workdir": "/home", "owner_pid": 2, "owner_start_time": 3}',
    ],
)
def test_a_file_that_is_not_a_record_is_ignored(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "local-triton.json"
    path.write_text(text)
    assert TritonRecord.read(path) is None
    sweep_stale_triton(path)  # nothing to do, nothing raised
    assert "not a local Triton record" in caplog.text


def test_the_sweep_stops_a_stale_triton_and_removes_its_files(
    tmp_path: Path, prefix: str, processes: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    pid = stand_in(processes, prefix)
    workdir, region = leftovers(tmp_path, prefix)
    path = tmp_path / "local-triton.json"
    stale = record(pid, prefix, workdir)
    stale.write(path)
    with caplog.at_level(logging.WARNING):
        sweep_stale_triton(path)
    assert processes[0].wait(5) == -signal.SIGTERM
    assert not workdir.exists() and not region.exists() and not path.exists()
    assert (
        f"cleaned up after a local Triton left by driftwise pid {stale.owner_pid}: stopped 1 process(es) "
        f"of tritonserver pid {pid} [{pid}], removed 1 shared-memory region(s) and {workdir}"
    ) in caplog.text


def test_a_stale_triton_that_ignores_sigterm_is_killed(
    tmp_path: Path, prefix: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    pid = stand_in(processes, prefix, IGNORE_SIGTERM)
    path = tmp_path / "local-triton.json"
    record(pid, prefix, tmp_path / "driftwise-triton-gone").write(path)
    sweep_stale_triton(path, stop_timeout_s=1.0)
    assert processes[0].wait(5) == -signal.SIGKILL


def test_a_process_that_took_the_recorded_pid_is_left_alone(
    tmp_path: Path, prefix: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    """No shm prefix on its command line: not that Triton (its pid was reused, or the record lies)."""
    other = subprocess.Popen(["/bin/sleep", "600"], start_new_session=True)
    processes.append(other)
    workdir, region = leftovers(tmp_path, prefix)
    path = tmp_path / "local-triton.json"
    record(other.pid, prefix, workdir).write(path)
    sweep_stale_triton(path, stop_timeout_s=1.0)
    assert other.poll() is None
    assert not workdir.exists() and not region.exists() and not path.exists()  # those were its


def test_a_triton_whose_owner_still_runs_is_left_alone(
    tmp_path: Path, prefix: str, processes: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    """Another driftwise process on the same data directory: its Triton is not stale."""
    pid = stand_in(processes, prefix)
    owner = subprocess.Popen(["/bin/sleep", "600"])
    processes.append(owner)
    workdir, region = leftovers(tmp_path, prefix)
    path = tmp_path / "local-triton.json"
    record(pid, prefix, workdir, owner=owner.pid).write(path)
    sweep_stale_triton(path, stop_timeout_s=1.0)
    assert alive(pid) and workdir.exists() and region.exists() and path.exists()
    assert f"belongs to driftwise pid {owner.pid}, still running; leaving it alone" in caplog.text


def test_nothing_is_logged_when_nothing_was_left(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The usual case after a crash: the death signal and the watchdog cleaned up already."""
    path = tmp_path / "local-triton.json"
    record(dead_pid(), prefix, tmp_path / "driftwise-triton-gone").write(path)
    with caplog.at_level(logging.INFO):
        sweep_stale_triton(path)
    assert not path.exists() and caplog.text == ""
