"""Graceful shutdown of `driftwise serve` on SIGTERM (docs/reliability/shutdown.md).

The server runs as an operator runs it, with its own local Triton. While a WatchProfile stream, a
StreamFeedback stream, an idle StreamEvents stream and a slow UpsertItems call are open, it gets
SIGTERM: health stops answering SERVING, the streams end at once with UNAVAILABLE "server shutting
down" (not CANCELLED at the end of the grace period), the UpsertItems call completes, the process
exits 0, its Triton child is gone and leaves no python-backend shared memory behind (the regions
that Triton had mapped, read from /proc: other Tritons may come and go on the machine meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from driftwise.datasets.movielens import load_movies
from driftwise.demo import item_message
from driftwise_client.v1 import (
    ingest_service_pb2,
    profile_service_pb2,
    ranking_service_pb2,
)
from tests.integration.support import Client, event, new_user

pytestmark = pytest.mark.integration

# DRIFTWISE_SERVER__GRACE_SECONDS: generous, so that the slow call finishes even on a busy machine;
# the server exits as soon as it has, not at the end of the grace
GRACE_S = 30.0
SLOW_BATCH = 150  # items in the in-flight UpsertItems: a second or more of encoding on 2 cores
SHM_PREFIX = "triton_python_backend"
SHUTTING_DOWN = "server shutting down"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int, name: str = "") -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,comm"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    return [int(p) for p, parent, comm in rows if int(parent) == pid and name in comm]


def shm_regions(triton_pid: int) -> set[str]:
    """The python-backend regions Triton and its stubs have mapped (other Tritons may run here)."""
    regions = set()
    for pid in (triton_pid, *children(triton_pid)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                path = line.split()[-1]
                if path.startswith(f"/dev/shm/{SHM_PREFIX}"):
                    regions.add(path)
    return regions


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def feedback_on(user: str, item_id: str) -> ranking_service_pb2.StreamFeedbackRequest:
    e = event(user, item_id)
    e.impression_id = f"rec-{item_id}"
    return ranking_service_pb2.StreamFeedbackRequest(event=e, count=5)


@dataclass
class Shutdown:
    """What the clients saw after SIGTERM, times in seconds from the signal."""

    exit_code: int | None = None
    exit_s: float | None = None
    health_after: str = ""  # NOT_SERVING, or the status code of a refused Check
    health_after_s: float | None = None
    # per stream: its status code and details, when it ended, the messages read after the signal
    streams: dict[str, tuple[str, str, float, int]] = field(default_factory=dict)
    slow_call: str = ""  # OK, or its status code
    slow_call_s: float | None = None  # when it ended, after the signal
    slow_call_took_s: float | None = None  # from its start
    triton_pids: list[int] = field(default_factory=list)
    triton_left: list[int] = field(default_factory=list)
    shm_regions: set[str] = field(default_factory=set)  # what Triton had mapped before SIGTERM
    shm_left: set[str] = field(default_factory=set)
    output: str = ""


async def ended(call: Any, t0: float, timeout: float) -> tuple[str, str, float, int]:
    """Read a stream to its end: its status code and details, when it ended (after t0), and how
    many messages came before."""
    read = 0
    try:
        async with asyncio.timeout(timeout):
            while await call.read() is not grpc.aio.EOF:
                read += 1
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, exc.details() or "", time.monotonic() - t0, read
    except TimeoutError:
        return "HANG", "", time.monotonic() - t0, read
    return grpc.StatusCode.OK.name, "", time.monotonic() - t0, read


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    return await call, time.monotonic()


async def sigterm_scenario(command: list[str], data_dir: Path) -> Shutdown:
    """Start `command` (driftwise serve), open the streams and the slow call, SIGTERM, observe."""
    result = Shutdown()
    port = free_port()
    env = {
        **os.environ,
        "DRIFTWISE_SERVER__PORT": str(port),
        "DRIFTWISE_DATA_DIR": str(data_dir),
        "DRIFTWISE_SERVER__GRACE_SECONDS": str(GRACE_S),
    }
    log_path = data_dir / "serve.out"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = Client.connect(f"127.0.0.1:{port}")
    try:
        await asyncio.wait_for(client.channel.channel_ready(), 240)
        health = health_pb2_grpc.HealthStub(client.channel)
        check = health_pb2.HealthCheckRequest(service="driftwise.v1.ProfileService")
        assert (await health.Check(check)).status == health_pb2.HealthCheckResponse.SERVING
        result.triton_pids = children(proc.pid, "tritonserver")
        for pid in result.triton_pids:
            result.shm_regions |= shm_regions(pid)

        movies = load_movies()[: 20 + SLOW_BATCH]
        small = ingest_service_pb2.UpsertItemsRequest(items=[item_message(m) for m in movies[:20]])
        await client.ingest.UpsertItems(small, timeout=120)
        user = new_user()
        like = event(user, movies[0].item_id)
        await client.ingest.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[like]), timeout=60)

        watch = client.profiles.WatchProfile(profile_service_pb2.WatchProfileRequest(user_id=user))
        assert (await watch.read()).profile.user_id == user  # the stream is open on the server
        feedback = client.ranking.StreamFeedback()
        await feedback.write(feedback_on(user, movies[1].item_id))
        answer = await feedback.read()
        assert answer.recorded, answer
        idle_events = client.ingest.StreamEvents()  # opened, nothing sent

        slow = ingest_service_pb2.UpsertItemsRequest(items=[item_message(m) for m in movies[20:]])
        slow_started = time.monotonic()
        slow_call = asyncio.ensure_future(timed(client.ingest.UpsertItems(slow, timeout=120)))
        # one more feedback message, unread: answered before the stream ends, or not read at all
        await feedback.write(feedback_on(user, movies[2].item_id))
        await asyncio.sleep(0.3)  # the slow call is on the server, encoding
        assert not slow_call.done(), "the slow call must still be in flight at SIGTERM"

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        while time.monotonic() - t0 < 5:  # Check until it no longer says SERVING
            try:
                status = (await health.Check(check, timeout=1)).status
            except grpc.aio.AioRpcError as exc:
                result.health_after = exc.code().name
                break
            if status != health_pb2.HealthCheckResponse.SERVING:
                result.health_after = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                break
            await asyncio.sleep(0.01)
        result.health_after_s = time.monotonic() - t0

        timeout = GRACE_S + 5
        watched, fed, idle = await asyncio.gather(
            ended(watch, t0, timeout), ended(feedback, t0, timeout), ended(idle_events, t0, timeout)
        )
        result.streams = {"WatchProfile": watched, "StreamFeedback": fed, "StreamEvents": idle}
        try:
            response, done = await slow_call
            result.slow_call = "OK" if response.upserted_count == SLOW_BATCH else "WRONG COUNT"
        except grpc.aio.AioRpcError as exc:
            result.slow_call, done = exc.code().name, time.monotonic()
        result.slow_call_s, result.slow_call_took_s = done - t0, done - slow_started

        try:
            result.exit_code = await asyncio.to_thread(proc.wait, GRACE_S + 20)
            result.exit_s = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            pass
        await asyncio.sleep(0.2)
        result.triton_left = [pid for pid in result.triton_pids if alive(pid)]
        result.shm_left = {path for path in result.shm_regions if Path(path).exists()}
        return result
    finally:
        await client.channel.close()
        await asyncio.to_thread(stop_leftovers, proc, result.triton_pids)
        result.output = log_path.read_text(errors="replace")


def stop_leftovers(proc: subprocess.Popen[bytes], triton_pids: list[int]) -> None:
    """After a failure: SIGTERM first (a SIGKILLed Triton leaves its shared memory behind)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(GRACE_S + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in triton_pids:  # its own process group, with the python-backend stubs
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
                time.sleep(0.2)


async def test_sigterm_drains_calls_ends_streams_and_stops_triton(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "driftwise.cli", "-v", "serve"]
    seen = await sigterm_scenario(command, tmp_path)
    print(seen)  # measured times, for docs/reliability/shutdown.md (pytest -s)
    assert len(seen.triton_pids) == 1, "serve runs its own Triton as a child process"
    assert seen.shm_regions, "Triton's python backend maps its regions in /dev/shm"

    # NOT_SERVING, or the call is refused: the server no longer takes calls (grpc core answers a
    # call that arrives while it stops UNAVAILABLE, or CANCELLED when it was being accepted)
    assert seen.health_after in ("NOT_SERVING", "UNAVAILABLE", "CANCELLED"), seen.health_after
    assert seen.health_after_s is not None and seen.health_after_s < 2

    for name, (code, details, at, _) in seen.streams.items():
        assert (code, details) == ("UNAVAILABLE", SHUTTING_DOWN), (name, code, details)
        assert at < 2, f"{name} ended {at:.1f} s after SIGTERM: it waited for the grace period"

    assert seen.slow_call == "OK", "the call in flight at SIGTERM completes"
    assert seen.exit_code == 0, seen.output[-3000:]
    assert seen.exit_s is not None and seen.slow_call_s is not None
    # then the stores close and Triton unloads its python model (about 5 s); LocalTritonServer.stop
    # gives Triton 10 s before SIGKILL
    assert seen.exit_s < seen.slow_call_s + 12, "the server exits once the call is done, not at grace end"
    assert not seen.triton_left, "Triton must be stopped with the server"
    assert not seen.shm_left, f"python-backend shared memory left in /dev/shm: {seen.shm_left}"
