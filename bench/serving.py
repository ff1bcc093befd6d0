"""Serving benchmark: the real all-in-one process under Recommend and ingest load, per vector store.

    .venv/bin/python bench/serving.py [--sizes 10000,100000] [--stores lite,server] [--users 1000]
        [--requests 2000] [--level-seconds 20] [--freshness-samples 100] [--quick] [--profile]
        [--out /tmp/driftwise-serving.json]

For every (store, catalogue size) this script, a separate client process:

1. writes the catalogue straight into the vector store with MilvusVectorStore (same schema as the
   server): the 9,742 MovieLens movies with their real encoder vectors (the text the server encodes,
   cached by `driftwise eval`), plus synthetic items up to the size, whose vectors are GENERATED
   (a random real item's vector plus Gaussian noise, renormalised) because encoding 100k texts on
   2 CPU cores takes hours. Milvus Lite allows one process per file, so it is closed before (4);
2. starts `driftwise serve` as a subprocess (settings by environment variables, one shared local
   Triton for the whole run) and waits for gRPC health SERVING;
3. ingests the users' histories through IngestEvents (item-referencing events only) and reports
   events/s: MovieLens ratings of the 610 real users, plus replays of real users' histories under
   new ids with time shifts up to --users;
4. restarts the server, so it refits on the log (self-tuning included) as a production process
   would have it; it serves at once and tunes in the background: the load waits for that;
5. Recommend (count 10, random users): warm-up, then at each concurrency --requests calls or
   --level-seconds of calls, whichever ends first (slow stores get fewer calls, so the run stays
   ~15 min), latency per call measured here, client side: p50, p99 and QPS; and the CPU each call
   cost, per process: utime + stime (children's included) from /proc/<pid>/stat before and after
   the level, divided by its calls, for `driftwise serve` (its refit worker included), Milvus (the
   server, or the Milvus Lite process the server started) and Triton; this load generator's own
   CPU (time.process_time) is reported apart and never counted. With --profile, py-spy samples
   the server process during each level (`record --format raw --nonblocking`, non-idle threads)
   and the samples are grouped: pymilvus (its gRPC client and protobuf work included), numpy,
   Driftwise's Python, grpc.aio (the event loop's own time: grpc.aio's server is Cython, without
   Python frames) and other; the top functions by own and by total time are listed;
6. freshness: one new event per sample via IngestEvents; from its acknowledgement (profile version
   v) Recommend is called until a response has profile_version >= v; p50/p99 of that time
   (same time budget);
7. during a refit: restarted once more with ranking.refit_seconds 5 and one new event, so a
   periodic refit (self-tuning included) runs under Recommend load at c=4; the calls that started
   while it ran (GetModelStatus says when it ended and how long it took) against the others of
   the same run: p99 side by side.

Targets (reported, never asserted): Recommend p99 <= 25 ms at 100k items with the Milvus server,
<= 40 ms with Milvus Lite at 10k; freshness p99 <= 50 ms; ingest >= 5,000 events/s per process.
Server, Triton, Milvus and this client share the machine, so on 2 cores they compete for CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from driftwise.datasets.movielens import Movie, Rating, load_movies, load_ratings
from driftwise.demo import event_message
from driftwise.evaluation.served import until_tuned
from driftwise.evaluation.vectors import item_vectors
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.model.events import EventType
from driftwise.settings import REPO_ROOT
from driftwise.storage.vector_store import INTERESTS, ITEMS, UNKNOWN_TIME, MilvusVectorStore, StoredItem
from driftwise_client.v1 import (
    common_pb2,
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

DIMENSION = 384  # all-MiniLM-L6-v2, the default text_encoder
EVAL_CACHE = REPO_ROOT / ".driftwise" / "eval-cache"  # where `driftwise eval` caches item vectors
CONCURRENCY = (1, 8, 32)
UPSERT_BATCH = 2000
DAY = 86400.0

# Targets from the issue, only reported. (store, size or None for any size) -> Recommend p99 ms.
P99_TARGETS_MS = {("server", 100_000): 25.0, ("lite", 10_000): 40.0}
FRESHNESS_P99_TARGET_MS = 50.0
INGEST_TARGET_EVENTS_S = 5000.0

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "sizes": "10000,100000",
        "stores": "lite,server",
        "users": 1000,
        "requests": 2000,
        "level_seconds": 20.0,
        "warmup": 40,
        "freshness_samples": 100,
        "max_history": 200,
    },
    "quick": {
        "sizes": "2000",
        "stores": "lite",
        "users": 100,
        "requests": 16,
        "level_seconds": 3.0,
        "warmup": 3,
        "freshness_samples": 5,
        "max_history": 50,
    },
}


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU milliseconds per call of one load level, per process (None: not measured here)."""

    server_ms: float | None  # driftwise serve (its refit worker included), Milvus Lite excluded
    milvus_ms: float | None  # the Milvus server or the Milvus Lite process
    triton_ms: float | None
    client_ms: float | None  # this load generator, for reference only: never in the sum
    # Milvus's own background work (time ticks, compaction, index building) at the rate measured
    # over 3 idle seconds just before the level, times the level's wall time, per call: part of
    # milvus_ms that the calls did not cause (it varies for minutes after a catalogue is written)
    milvus_background_ms: float | None = None

    @property
    def total_ms(self) -> float:
        """Server + Milvus + Triton: the serving cost of one call."""
        return sum(v for v in (self.server_ms, self.milvus_ms, self.triton_ms) if v is not None)


@dataclass
class Latency:
    """Client-side latency of one load level, and the CPU it cost the processes under test."""

    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    qps: float
    cpu: Cpu | None = None


@dataclass
class Freshness:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_recommend_calls: float  # Recommend calls until one reflected the event (1 = the first)
    max_recommend_calls: int
    ingest_ack_p50_ms: float  # IngestEvents round trip of the one-event request itself


@dataclass
class Row:
    """Everything measured for one (store, catalogue size)."""

    store: str
    items: int
    real_items: int
    synthetic_items: int
    populate_s: float
    events: int
    ingest_events_per_s: float
    restart_s: float  # SIGTERM to SERVING again, including the model refit on the log
    personalized_share: float  # share of Recommend responses with source PERSONALIZED
    recommend: list[Latency] = field(default_factory=list)
    freshness: Freshness | None = None
    refit_s: float = 0.0  # the periodic refit under load, self-tuning included
    during_refit: Latency | None = None  # Recommend calls started while it ran
    outside_refit: Latency | None = None  # the other calls of the same load
    self_tuning: str = ""  # what it chose
    profile: list[Profile] = field(default_factory=list)  # per load level, with --profile
    memory: dict[str, dict[str, float]] = field(default_factory=dict)  # after the load levels (memory_mb)


# -- CPU per call ----------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += tree.get(child, [])
    return found


def _cpu_s(pid: int, reaped: bool) -> float:
    """utime + stime of `pid` (+ cutime + cstime, its reaped children's, when `reaped`), seconds."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (16, 17)
    return ticks / CLOCK_TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds of the processes under test, read from /proc/<pid>/stat; never this process (the
    load generator, measured apart with time.process_time).

    server: `driftwise serve` and its descendants (the refit worker, its fork server) plus the
    children it reaped, less a Milvus Lite process among them, which counts as milvus. milvus: the
    Milvus server (none when --milvus-uri points elsewhere) or the Milvus Lite process, with its
    descendants. triton: the shared Triton and its descendants (Python backend stubs)."""

    server_pid: int
    milvus_pid: int | None  # a Milvus server's; Milvus Lite's is found among the server's children
    triton_pid: int | None

    def sample(self) -> dict[str, float | None]:
        tree = _children()
        server_tree = _descendants(self.server_pid, tree)
        milvus_root = self.milvus_pid
        if milvus_root is None:  # Milvus Lite: the server's child running the milvus binary
            milvus_root = next((p for p in server_tree if _comm(p).startswith("milvus")), None)
        milvus_tree = [] if milvus_root is None else [milvus_root, *_descendants(milvus_root, tree)]
        server = _cpu_s(self.server_pid, reaped=True) + sum(
            _cpu_s(p, reaped=True) for p in server_tree if p not in milvus_tree
        )

        def total(root: int | None) -> float | None:
            if root is None:
                return None
            return _cpu_s(root, reaped=True) + sum(_cpu_s(p, reaped=True) for p in _descendants(root, tree))

        return {
            "server": server,
            "milvus": total(milvus_root),
            "triton": total(self.triton_pid),
            "client": time.process_time(),
            "client_wall": time.perf_counter(),
        }


async def until_idle(
    meter: CpuMeter, below: float = 0.05, timeout_s: float = 300.0, window_s: float = 1.0
) -> float:
    """Wait until the server process tree uses under `below` of a core over `window_s` (at most
    `timeout_s`); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = meter.sample()["server"]
        await asyncio.sleep(window_s)
        after = meter.sample()["server"]
        if before is not None and after is not None and after - before < below * window_s:
            break
    return time.monotonic() - started


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of one process from /proc/<pid>/status; zeros if gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return 0.0, 0.0
    kb = [float(fields.get(key, "0 kB").split()[0]) for key in ("VmRSS", "VmHWM")]
    return kb[0] / 1024.0, kb[1] / 1024.0


def memory_mb(meter: CpuMeter) -> dict[str, dict[str, float]]:
    """Resident memory now and at its peak (MB) per process: the serving process alone, its other
    descendants (the refit worker and its fork server) summed, Milvus and Triton with theirs."""
    tree = _children()
    out: dict[str, dict[str, float]] = {}

    def add(name: str, pids: list[int]) -> None:
        if pids:
            pairs = [_memory_mb(p) for p in pids]
            out[name] = {"rss_mb": sum(r for r, _ in pairs), "peak_mb": sum(h for _, h in pairs)}

    server_tree = _descendants(meter.server_pid, tree)
    milvus_root = meter.milvus_pid or next((p for p in server_tree if _comm(p).startswith("milvus")), None)
    milvus_tree = [] if milvus_root is None else [milvus_root, *_descendants(milvus_root, tree)]
    add("server", [meter.server_pid])
    add("server children", [p for p in server_tree if p not in milvus_tree])
    add("milvus", milvus_tree)
    if meter.triton_pid is not None:
        add("triton", [meter.triton_pid, *_descendants(meter.triton_pid, tree)])
    return out


def _background_ms(
    idle_from: dict[str, float | None], idle_to: dict[str, float | None], wall_s: float, calls: int
) -> float | None:
    """Milvus's CPU rate over the idle seconds between two samples, times `wall_s`, per call (ms)."""
    a, b = idle_from["milvus"], idle_to["milvus"]
    idle_s = (idle_to["client_wall"] or 0.0) - (idle_from["client_wall"] or 0.0)
    if a is None or b is None or calls == 0 or idle_s <= 0:
        return None
    return (b - a) / idle_s * wall_s * 1000.0 / calls


def cpu_ms_per_call(before: dict[str, float | None], after: dict[str, float | None], calls: int) -> Cpu:
    def per_call(key: str) -> float | None:
        b, a = before[key], after[key]
        return None if a is None or b is None or calls == 0 else (a - b) * 1000.0 / calls

    return Cpu(per_call("server"), per_call("milvus"), per_call("triton"), per_call("client"))


# -- where the server's CPU goes -------------------------------------------------------------------

PROFILE_GROUPS = ("grpc.aio", "pymilvus", "numpy", "driftwise", "other")


def _frame_group(frame: str) -> str | None:
    """The group of one py-spy frame, "function (path:line)"; None for the standard library etc."""
    path = "/" + frame[frame.rfind("(") + 1 :]  # py-spy drops the site-packages/ prefix
    if "pymilvus" in path or "milvus_lite" in path or "google/protobuf" in path:
        return "pymilvus"
    if "/numpy/" in path:
        return "numpy"
    if "/grpc/" in path or "grpc_" in path:
        return "grpc.aio"
    if "/driftwise/" in path and "/driftwise/cli.py" not in path:  # cli.py: the frames running the loop
        return "driftwise"
    return None


EVENT_LOOP_FRAMES = ("Handle._run (asyncio/events.py", "BaseEventLoop._run_once (", "Selector.select (")


def stack_group(frames: Sequence[str]) -> str:
    """A sample's group: pymilvus if any frame is pymilvus's (the gRPC client and protobuf work it
    drives included); else the group of the innermost frame in a known group (the standard library
    under it counts to that group); else grpc.aio if the innermost frame is the event loop's
    (Handle._run, _run_once, selectors): py-spy sees no Python frame in grpc.aio's Cython server,
    so its work (reading, parsing and writing the calls) shows as the loop's own time, together
    with asyncio's C parts; else other (other threads' own time, the standard library)."""
    groups = [_frame_group(f) for f in frames]  # root first
    if "pymilvus" in groups:
        return "pymilvus"
    known = next((g for g in reversed(groups) if g is not None), None)
    if known is not None:
        return known
    return "grpc.aio" if any(f in frames[-1] for f in EVENT_LOOP_FRAMES) else "other"


def _short(frame: str) -> str:
    """ "f (/long/path/site-packages/pkg/mod.py:12)" -> "f (pkg/mod.py)": per function, not line."""
    name, _, path = frame.partition(" (")
    for marker in ("site-packages/", "services/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path.rstrip(')').rsplit(':', 1)[0]})"


@dataclass
class Profile:
    """py-spy samples of the server process during one load level (threads that were not idle)."""

    concurrency: int
    samples: int
    groups: dict[str, float]  # group -> share of samples
    top_self: list[tuple[str, float]]  # innermost frames, share of samples
    top_total: list[tuple[str, float]]  # frames on the stack, share of samples
    error: str = ""


def parse_raw_profile(text: str, concurrency: int, top: int = 15) -> Profile:
    """py-spy `record --format raw` (collapsed stacks: "frame;frame;... count" per line)."""
    groups = dict.fromkeys(PROFILE_GROUPS, 0)
    self_counts: dict[str, int] = {}
    total_counts: dict[str, int] = {}
    samples = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        frames = [f for f in frames if " (" in f]  # no "process ..." / "thread ..." pseudo-frames
        if not frames:
            continue
        samples += count
        groups[stack_group(frames)] += count
        leaf = _short(frames[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + count
        for frame in {_short(f) for f in frames}:
            total_counts[frame] = total_counts.get(frame, 0) + count

    def shares(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, n / samples) for name, n in best]

    return Profile(
        concurrency,
        samples,
        {g: (n / samples if samples else 0.0) for g, n in groups.items()},
        shares(self_counts),
        shares(total_counts),
    )


class Sampler:
    """py-spy record of one pid (non-blocking: the process is not paused) until stop()."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        self.out = out
        self.log = out.with_suffix(".log")
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate)]
        command += ["--nonblocking", "--output", str(out)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""
        try:
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:  # not installed: `pip install py-spy`
            self.error = f"py-spy: cannot run {exe}: {e}"

    async def stop(self, concurrency: int) -> Profile:
        if self.proc is None:
            return Profile(concurrency, 0, {}, [], [], error=self.error)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.out.exists():
            error = self.log.read_text(errors="replace")[-500:] if self.log.exists() else "no output"
            return Profile(concurrency, 0, {}, [], [], error=f"py-spy: {error.strip()}")
        return parse_raw_profile(self.out.read_text(errors="replace"), concurrency)


# -- catalogue -------------------------------------------------------------------------------------


def _category(movie: Movie) -> str:
    """The first genre: categories matter for filters only, which the load below does not use."""
    return movie.tags[0] if movie.tags else "movie"


def real_time(movie: Movie) -> int:
    return UNKNOWN_TIME if movie.create_time is None else int(movie.create_time)


def build_catalogue(
    movies: Sequence[Movie], vectors: npt.NDArray[np.float32], size: int, noise: float, seed: int
) -> tuple[list[StoredItem], float]:
    """`size` items: real movies first, then synthetic ones near random real ones.

    Returns the items and the mean cosine of synthetic vectors to their source (nan if none)."""
    real = [
        StoredItem(
            m.item_id,
            m.title,
            _category(m),
            real_time(m),
            vectors[i],
        )
        for i, m in enumerate(movies[:size])
    ]
    extra = size - len(real)
    if extra <= 0:
        return real, float("nan")
    rng = np.random.default_rng(seed)
    sources = rng.integers(0, len(movies), extra)
    noisy = vectors[sources].astype(np.float64) + rng.normal(0.0, noise, (extra, vectors.shape[1]))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    cosine = float(np.mean(np.sum(noisy * vectors[sources], axis=1)))
    synthetic = [
        StoredItem(
            f"syn-{n}",
            f"synthetic item {n}",
            _category(movies[src]),
            real_time(movies[src]),
            noisy[n].astype(np.float32),
        )
        for n, src in enumerate(sources.tolist())
    ]
    return real + synthetic, cosine


async def populate(uri: str, token: str, index_type: str, items: Sequence[StoredItem]) -> float:
    """Write the catalogue into a fresh store (old collections dropped); seconds taken.

    On a Milvus server the data is flushed and the HNSW index awaited, otherwise the first searches
    would scan growing segments and look faster or slower than steady state."""
    started = time.perf_counter()
    server = uri.startswith("http")
    if server:  # one server serves every size in turn
        await asyncio.to_thread(_drop_collections, uri, token)
    store = MilvusVectorStore(uri, DIMENSION, token=token, index_type=index_type)
    await store.open()
    try:
        for i in range(0, len(items), UPSERT_BATCH):
            await store.upsert_items(items[i : i + UPSERT_BATCH])
    finally:
        await store.close()
    if server:
        await asyncio.to_thread(_wait_for_index, uri, token, len(items))
    return time.perf_counter() - started


def _drop_collections(uri: str, token: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, token=token)
    try:
        for name in (ITEMS, INTERESTS):
            if client.has_collection(name):
                client.drop_collection(name)
    finally:
        client.close()


def _reusable(uri: str, token: str, rows: int) -> bool:
    """Whether the server's items collection holds `rows` items; if so, the users' interest
    vectors of the earlier run are dropped (the run starts with no users)."""
    from pymilvus import MilvusClient

    if not uri.startswith("http"):
        return False
    client = MilvusClient(uri=uri, token=token)
    try:
        if not client.has_collection(ITEMS) or int(client.get_collection_stats(ITEMS)["row_count"]) != rows:
            return False
        if client.has_collection(INTERESTS):
            client.drop_collection(INTERESTS)
        return True
    finally:
        client.close()


def _wait_for_index(uri: str, token: str, rows: int, timeout_s: float = 600.0) -> None:
    """Flush the items and wait until the vector index covers them all."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, token=token)
    try:
        client.flush(ITEMS)
        index = client.list_indexes(ITEMS)[0]
        deadline = time.monotonic() + timeout_s
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            info = client.describe_index(ITEMS, index)
            if "indexed_rows" not in info or int(info["indexed_rows"]) >= rows:
                return
            time.sleep(1.0)
        print(f"  warning: index not complete after {timeout_s:.0f} s: {info}", flush=True)
    finally:
        client.close()


# -- users and their events ------------------------------------------------------------------------


def build_histories(
    ratings: Sequence[Rating], known_items: set[str], users: int, max_history: int, seed: int, now: float
) -> list[Rating]:
    """The events to ingest, in time order, for `users` users (item-referencing ratings only).

    Times are shifted so the data set's last rating lands an hour before `now` (surface and middle
    layers then hold evidence, as for active users). Users beyond the 610 real ones replay a random
    real user's history under a new id, shifted a further 0-30 days into the past. Each user keeps
    the last `max_history` events (0: all), to bound the run time."""
    rng = random.Random(seed)
    by_user: dict[str, list[Rating]] = {}
    for r in ratings:
        if r.item_id in known_items:
            by_user.setdefault(r.user_id, []).append(r)
    real_ids = sorted(by_user, key=int)
    shift = now - 3600.0 - max(r.time for r in ratings)
    chosen = rng.sample(real_ids, users) if users < len(real_ids) else real_ids
    plans = [(uid, uid, shift) for uid in chosen]
    for n in range(users - len(plans)):
        source = rng.choice(real_ids)
        plans.append((f"replay-{n}-of-{source}", source, shift - rng.uniform(0.0, 30 * DAY)))
    events: list[Rating] = []
    for user_id, source, offset in plans:
        history = by_user[source][-max_history:] if max_history else by_user[source]
        events += [
            dataclasses.replace(
                r, event_id=f"bench-{user_id}-{r.item_id}", user_id=user_id, time=r.time + offset
            )
            for r in history
        ]
    return sorted(events, key=lambda r: r.time)


# -- the server under test -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`driftwise serve` as a subprocess; its output goes to <data_dir>/serve.log."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**os.environ, **env, "DRIFTWISE_SERVER__PORT": str(self.port)}
        self.log_path = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 300.0, command: list[str] | None = None) -> float:
        """Start (`command`, default `driftwise serve`) and wait for gRPC health SERVING; returns the
        seconds it took."""
        started = time.perf_counter()
        script = Path(sys.executable).with_name("driftwise")
        if command is None:
            fallback = [sys.executable, "-m", "driftwise.cli", "serve"]
            command = [str(script), "serve"] if script.exists() else fallback
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        async with grpc.aio.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"driftwise serve exited ({self.proc.returncode}):\n{self.log_tail()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - started
                await asyncio.sleep(0.2)
        self.kill()
        raise RuntimeError(f"driftwise serve not SERVING after {timeout_s:.0f} s:\n{self.log_tail()}")

    async def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (graceful: stores are closed, which Milvus Lite needs) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.proc.returncode not in (0, None):
            print(f"  warning: serve exited with {self.proc.returncode}; see {self.log_path}", flush=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@contextlib.asynccontextmanager
async def serving(data_dir: Path, env: dict[str, str]) -> AsyncIterator[tuple[ServerProcess, float]]:
    server = ServerProcess(data_dir, env)
    try:
        yield server, await server.start()
    except BaseException:
        # the work dir (and the log in it) is deleted on the way out: show what the server said
        print(f"  server log, last lines:\n{server.log_tail()}", flush=True)
        raise
    finally:
        await server.stop()


# -- load ------------------------------------------------------------------------------------------


def _batches(rows: Sequence[Rating], size: int) -> Iterator[Sequence[Rating]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


async def ingest(channel: grpc.aio.Channel, events: Sequence[Rating], batch: int, concurrency: int) -> float:
    """Send the events as IngestEvents batches from `concurrency` callers; returns events/s."""
    stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
    requests = iter(
        [
            ingest_service_pb2.IngestEventsRequest(events=[event_message(r) for r in b])
            for b in _batches(events, batch)
        ]
    )  # built before the clock starts: protobuf construction is client cost, not server cost

    async def caller() -> None:
        for request in requests:
            await stub.IngestEvents(request, timeout=300)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return len(events) / (time.perf_counter() - started)


def _ms(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1000.0


async def recommend_load(
    stub: ranking_service_pb2_grpc.RankingServiceStub,
    users: Sequence[str],
    requests: int,
    budget_s: float,
    concurrency: int,
    rng: random.Random,
    sources: list[int],
) -> Latency:
    """Up to `requests` Recommend calls for random users from `concurrency` callers (closed loop);
    no new call starts after `budget_s`."""
    queue = iter([rng.choice(users) for _ in range(requests)])
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_s

    async def caller() -> None:
        for user in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            reply = await stub.Recommend(
                ranking_service_pb2.RecommendRequest(user_id=user, count=10), timeout=60
            )
            latencies.append(time.perf_counter() - started)
            sources.append(reply.source)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    done = len(latencies)
    return Latency(concurrency, done, _ms(latencies, 50), _ms(latencies, 99), done / wall)


async def recommend_during_refit(
    channel: grpc.aio.Channel,
    users: Sequence[str],
    item_ids: Sequence[str],
    rng: random.Random,
    budget_s: float,
) -> tuple[Latency, Latency, float, str]:
    """Recommend load (c=4) until the server finishes a refit started by one new event; latencies of
    the calls that started while the refit ran vs the rest. The server's refit_seconds is short."""
    ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
    ingest_stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
    before = await until_tuned(channel)  # the refit it starts with; the next one is measured
    user = rng.choice(users)
    event = common_pb2.Event(
        event_id=f"refit-{uuid.uuid4().hex}",
        user_id=user,
        type=common_pb2.EVENT_TYPE_VIEW,
        item_id=rng.choice(item_ids),
    )
    event.event_time.GetCurrentTime()
    await ingest_stub.IngestEvents(ingest_service_pb2.IngestEventsRequest(events=[event]))
    calls: list[tuple[float, float]] = []  # (wall-clock start, seconds)
    done = asyncio.Event()
    deadline = time.perf_counter() + budget_s

    async def caller() -> None:
        while not done.is_set() and time.perf_counter() < deadline:
            started, t = time.time(), time.perf_counter()
            await ranking.Recommend(
                ranking_service_pb2.RecommendRequest(user_id=rng.choice(users), count=10), timeout=60
            )
            calls.append((started, time.perf_counter() - t))

    async def watcher() -> ranking_service_pb2.ModelStatus | None:
        while time.perf_counter() < deadline:
            await asyncio.sleep(1.0)
            status = (await ranking.GetModelStatus(ranking_service_pb2.GetModelStatusRequest())).shards[0]
            if status.refit_time.ToNanoseconds() != before.refit_time.ToNanoseconds():
                await asyncio.sleep(2.0)  # some calls after it, for the comparison
                done.set()
                return status
        return None  # reported as such; the rest of the run goes on

    status, *_ = await asyncio.gather(watcher(), *(caller() for _ in range(4)))
    if status is None:
        return None
    ended = status.refit_time.ToNanoseconds() / 1e9
    began = ended - status.refit_seconds
    inside = [s for start, s in calls if began <= start <= ended]
    outside = [s for start, s in calls if not began <= start <= ended]

    def latency(values: list[float], seconds: float) -> Latency:
        if not values:  # a refit quicker than any call
            return Latency(4, 0, float("nan"), float("nan"), 0.0)
        return Latency(4, len(values), _ms(values, 50), _ms(values, 99), len(values) / max(seconds, 1e-9))

    tuning = json_format.MessageToDict(status.tuning).get("chosen", {})
    total = calls[-1][0] - calls[0][0] if calls else 0.0
    return (
        latency(inside, status.refit_seconds),
        latency(outside, total - status.refit_seconds),
        status.refit_seconds,
        json.dumps(tuning),
    )


async def freshness(
    channel: grpc.aio.Channel,
    users: Sequence[str],
    item_ids: Sequence[str],
    samples: int,
    budget_s: float,
    rng: random.Random,
) -> Freshness:
    """Time from an event's acknowledgement to the first Recommend that reflects it (one sample at
    a time, up to `samples` or until `budget_s` passed, at least 3)."""
    ingest_stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
    ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
    delays: list[float] = []
    calls: list[int] = []
    acks: list[float] = []
    deadline = time.perf_counter() + budget_s
    for n in range(samples):
        if n >= 3 and time.perf_counter() > deadline:
            break
        user = rng.choice(users)
        event = common_pb2.Event(
            event_id=f"fresh-{n}-{uuid.uuid4().hex}",
            user_id=user,
            type=common_pb2.EventType.ValueType(EventType.VIEW),
            item_id=rng.choice(item_ids),
        )
        event.event_time.GetCurrentTime()
        sent = time.perf_counter()
        reply = await ingest_stub.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[event]), timeout=60
        )
        acked = time.perf_counter()
        version = reply.acks[0].profile_version
        request = ranking_service_pb2.RecommendRequest(user_id=user, count=10)
        for attempt in range(1, 1001):
            response = await ranking.Recommend(request, timeout=60)
            if response.profile_version >= version:
                delays.append(time.perf_counter() - acked)
                calls.append(attempt)
                break
        else:
            raise RuntimeError(f"profile version {version} of {user} never reached Recommend")
        acks.append(acked - sent)
    return Freshness(
        len(delays),
        _ms(delays, 50),
        _ms(delays, 99),
        max(delays) * 1000.0,
        float(np.mean(calls)),
        max(calls),
        _ms(acks, 50),
    )


# -- one (store, size) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreTarget:
    """Where the server keeps vectors: Milvus Lite in its data directory, or a Milvus server."""

    name: str  # "lite" or "server"
    uri: str  # "" for Lite: <data_dir>/milvus.db
    token: str = ""
    pid: int | None = None  # the Milvus server's process when started here (for its CPU)

    @property
    def index_type(self) -> str:
        return "FLAT" if self.name == "lite" else "HNSW"

    def uri_for(self, data_dir: Path) -> str:
        return self.uri or str(data_dir / "milvus.db")


async def bench_one(
    store: StoreTarget,
    catalogue: Sequence[StoredItem],
    real_items: int,
    events: Sequence[Rating],
    users: Sequence[str],
    args: argparse.Namespace,
    triton_url: str,
    triton_pid: int | None,
    data_dir: Path,
) -> Row:
    size = len(catalogue)
    print(f"\n== {store.name} ({store.index_type}), {size:,} items", flush=True)
    shutil.rmtree(data_dir, ignore_errors=True)  # a reused --work-dir starts from scratch
    data_dir.mkdir(parents=True)
    if args.reuse_catalogue and await asyncio.to_thread(_reusable, store.uri, store.token, size):
        populate_s = 0.0
        print(f"  catalogue reused: the server holds {size:,} items", flush=True)
    else:
        populate_s = await populate(store.uri_for(data_dir), store.token, store.index_type, catalogue)
        print(f"  catalogue written in {populate_s:.1f} s", flush=True)
    if store.pid is not None:  # a Milvus server compacts and indexes for minutes after a write
        milvus = CpuMeter(store.pid, None, None)  # (its tree in the "server" slot)
        settled_s = await until_idle(milvus, below=0.15, timeout_s=900.0, window_s=5.0)
        print(f"  Milvus idle {settled_s:.0f} s later", flush=True)
    env = {
        "DRIFTWISE_DATA_DIR": str(data_dir),
        "DRIFTWISE_TRITON__URL": triton_url,
        "DRIFTWISE_MILVUS__URI": store.uri,
        "DRIFTWISE_MILVUS__TOKEN": store.token,
        "DRIFTWISE_MILVUS__INDEX_TYPE": store.index_type,
    }
    async with serving(data_dir, env) as (server, start_s):
        print(f"  server SERVING in {start_s:.1f} s; ingesting {len(events):,} events ...", flush=True)
        async with grpc.aio.insecure_channel(server.target) as channel:
            events_per_s = await ingest(channel, events, args.ingest_batch, args.ingest_concurrency)
    print(f"  ingest: {events_per_s:,.0f} events/s; restarting to fit the learned models ...", flush=True)
    row = Row(
        store.name, size, real_items, size - real_items, populate_s, len(events), events_per_s, 0.0, 0.0
    )
    rng = random.Random(args.seed)
    async with serving(data_dir, env) as (server, restart_s):
        row.restart_s = restart_s
        async with grpc.aio.insecure_channel(server.target) as channel:
            # the refit it starts with, off the load levels below
            await until_tuned(channel, timeout_s=args.refit_timeout)
            assert server.proc is not None
            meter = CpuMeter(server.proc.pid, store.pid, triton_pid)
            # what follows a refit (profiles rebuilt for learned topics, the item cache's warm-up)
            # would otherwise be counted in the first load level's CPU per call
            settled_s = await until_idle(meter)
            print(f"  server idle {settled_s:.1f} s after its first refit", flush=True)
            ranking = ranking_service_pb2_grpc.RankingServiceStub(channel)
            sources: list[int] = []
            await recommend_load(ranking, users, args.warmup, args.level_seconds, 4, rng, [])
            for concurrency in CONCURRENCY:
                sampler = None
                if args.profile:
                    out = data_dir / f"profile-c{concurrency}.txt"
                    sampler = Sampler(server.proc.pid, out, args.profile_rate)
                idle_before = meter.sample()
                await asyncio.sleep(3.0)
                before = meter.sample()
                started = time.perf_counter()
                level = await recommend_load(
                    ranking, users, args.requests, args.level_seconds, concurrency, rng, sources
                )
                level.cpu = cpu_ms_per_call(before, meter.sample(), level.requests)
                level.cpu.milvus_background_ms = _background_ms(
                    idle_before, before, time.perf_counter() - started, level.requests
                )
                row.recommend.append(level)
                print(
                    f"  Recommend c={concurrency:>2}: p50 {level.p50_ms:6.1f} ms  p99 {level.p99_ms:6.1f} ms"
                    f"  {level.qps:6.1f} QPS ({level.requests} calls); CPU ms/call {_cpu_text(level.cpu)}",
                    flush=True,
                )
                if sampler is not None:
                    profile = await sampler.stop(concurrency)
                    row.profile.append(profile)
                    print(f"  {_profile_text(profile)}", flush=True)
            row.memory = memory_mb(meter)
            print("  memory (MB, resident / peak): " + _memory_text(row.memory), flush=True)
            row.personalized_share = sources.count(
                ranking_service_pb2.RECOMMENDATION_SOURCE_PERSONALIZED
            ) / len(sources)
            item_ids = [it.item_id for it in catalogue]
            row.freshness = await freshness(
                channel, users, item_ids, args.freshness_samples, args.level_seconds, rng
            )
            print(
                f"  freshness: p50 {row.freshness.p50_ms:.1f} ms  p99 {row.freshness.p99_ms:.1f} ms  "
                f"(mean {row.freshness.mean_recommend_calls:.2f} Recommend calls)",
                flush=True,
            )
    if args.skip_refit_phase:
        return row
    refitting = {**env, "DRIFTWISE_RANKING__REFIT_SECONDS": "5"}
    async with (
        serving(data_dir, refitting) as (server, _),
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        item_ids = [it.item_id for it in catalogue]
        measured = await recommend_during_refit(channel, users, item_ids, rng, budget_s=600.0)
        if measured is None:
            print("  during a refit: no refit finished within 600 s of load", flush=True)
            return row
        inside, outside, row.refit_s, row.self_tuning = measured
        row.during_refit, row.outside_refit = inside, outside
        print(
            f"  during a refit ({row.refit_s:.1f} s): p50 {inside.p50_ms:.1f} ms  p99 {inside.p99_ms:.1f} ms"
            f" ({inside.requests} calls); other calls: p50 {outside.p50_ms:.1f} ms  "
            f"p99 {outside.p99_ms:.1f} ms ({outside.requests} calls); chose {row.self_tuning}",
            flush=True,
        )
    return row


@contextlib.asynccontextmanager
async def milvus_server(args: argparse.Namespace, work: Path) -> AsyncIterator[StoreTarget]:
    """The Milvus server: --milvus-uri if given, else a LocalMilvusServer for the whole run."""
    if args.milvus_uri:
        yield StoreTarget("server", args.milvus_uri, args.milvus_token, args.milvus_pid)
        return
    try:
        from driftwise_testing.milvus_server import LocalMilvusServer
    except ImportError as exc:
        raise SystemExit(
            "no Milvus server: driftwise_testing.milvus_server is missing; pass --milvus-uri or --stores lite"
        ) from exc
    print("starting a local Milvus server ...", flush=True)
    server = LocalMilvusServer(work / "milvus-server")
    await asyncio.to_thread(server.start)
    try:
        yield StoreTarget("server", server.uri, server.token, server.pid)
    finally:
        await asyncio.to_thread(server.stop)


# -- report ----------------------------------------------------------------------------------------


def commit_hash() -> str:
    """HEAD's commit read from .git (no git process), or "unknown"."""
    git = REPO_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def machine() -> str:
    """CPU count and model (from /proc/cpuinfo where there is one)."""
    model = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.2f}"


def _memory_text(memory: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {m['rss_mb']:,.0f} / {m['peak_mb']:,.0f}" for name, m in memory.items())


def _cpu_text(cpu: Cpu | None) -> str:
    if cpu is None:
        return "-"
    return (
        f"server {_fmt(cpu.server_ms)} + milvus {_fmt(cpu.milvus_ms)} + triton {_fmt(cpu.triton_ms)}"
        f" = {cpu.total_ms:.2f} (load generator {_fmt(cpu.client_ms)}; Milvus background "
        f"{_fmt(cpu.milvus_background_ms)})"
    )


def _profile_text(profile: Profile) -> str:
    if profile.error:
        return f"profile c={profile.concurrency}: none ({profile.error})"
    groups = ", ".join(f"{g} {share:.0%}" for g, share in profile.groups.items())
    tops = "; ".join(f"{name} {share:.0%}" for name, share in profile.top_self[:5])
    return f"profile c={profile.concurrency} ({profile.samples} samples): {groups}. Top self: {tops}"


def _mark(value: float, target: float, below: bool) -> str:
    return "met" if (value <= target if below else value >= target) else "MISSED"


def report(rows: list[Row], context: dict[str, Any]) -> None:
    print(f"\n# Serving benchmark ({context['machine']}, commit {context['commit'][:12]})")
    for line in context["composition"]:
        print(f"- {line}")
    head = "| store | items | ingest ev/s |"
    rule = "|---|---:|---:|"
    for c in CONCURRENCY:
        head += f" c={c} p50 / p99 ms | c={c} QPS |"
        rule += "---:|---:|"
    head += " fresh p50 / p99 ms | p99 target ms |"
    rule += "---:|---:|"
    print(f"\n{head}\n{rule}")
    for row in rows:
        cells = [row.store, f"{row.items:,}", f"{row.ingest_events_per_s:,.0f}"]
        for level in row.recommend:
            cells += [f"{level.p50_ms:.1f} / {level.p99_ms:.1f}", f"{level.qps:.1f}"]
        fresh = row.freshness
        cells.append("-" if fresh is None else f"{fresh.p50_ms:.1f} / {fresh.p99_ms:.1f}")
        target = P99_TARGETS_MS.get((row.store, row.items))
        cells.append("-" if target is None else f"<= {target:.0f}")
        print("| " + " | ".join(cells) + " |")
    print(
        "\nCPU ms per Recommend (from /proc/<pid>/stat over each load level; the load generator is not "
        "in the total)\n"
    )
    print(
        "| store | items | c | QPS | server | milvus | triton | total | load generator | Milvus background |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        for level in row.recommend:
            cpu = level.cpu
            if cpu is None:
                continue
            print(
                f"| {row.store} | {row.items:,} | {level.concurrency} | {level.qps:.1f} | "
                f"{_fmt(cpu.server_ms)} | {_fmt(cpu.milvus_ms)} | {_fmt(cpu.triton_ms)} | "
                f"{cpu.total_ms:.2f} | {_fmt(cpu.client_ms)} | {_fmt(cpu.milvus_background_ms)} |"
            )
    if any(row.memory for row in rows):
        print("\nMemory after the load levels (MB, resident now / peak since start; /proc/<pid>/status)\n")
        for row in rows:
            print(f"- {row.store} {row.items:,}: {_memory_text(row.memory)}")
    for row in rows:
        if row.profile:
            print(f"\nWhere the server's CPU goes, {row.store} {row.items:,} (py-spy, non-idle samples):")
            for profile in row.profile:
                print(f"- {_profile_text(profile)}")
    print("\nTargets (reported, not asserted):")
    for row in rows:
        target = P99_TARGETS_MS.get((row.store, row.items))
        if target is not None:
            levels = ", ".join(
                f"c={lv.concurrency} {lv.p99_ms:.1f} ms {_mark(lv.p99_ms, target, True)}"
                for lv in row.recommend
            )
            print(f"- Recommend p99 <= {target:.0f} ms, {row.store} {row.items:,} items: {levels}")
    for row in rows:
        fresh = row.freshness
        if fresh is not None:
            print(
                f"- freshness p99 <= {FRESHNESS_P99_TARGET_MS:.0f} ms, {row.store} {row.items:,}: "
                f"{fresh.p99_ms:.1f} ms {_mark(fresh.p99_ms, FRESHNESS_P99_TARGET_MS, True)} "
                f"(mean {fresh.mean_recommend_calls:.2f}, max {fresh.max_recommend_calls} Recommend calls)"
            )
        print(
            f"- ingest >= {INGEST_TARGET_EVENTS_S:,.0f} events/s, {row.store} {row.items:,}: "
            f"{row.ingest_events_per_s:,.0f} {_mark(row.ingest_events_per_s, INGEST_TARGET_EVENTS_S, False)}"
        )
    for row in rows:
        if row.during_refit is not None and row.outside_refit is not None:
            print(
                f"- during a refit ({row.refit_s:.1f} s, self-tuning included), {row.store} {row.items:,}: "
                f"Recommend p99 {row.during_refit.p99_ms:.1f} ms vs {row.outside_refit.p99_ms:.1f} ms "
                "outside it "
                f"(c=4, {row.during_refit.requests} / {row.outside_refit.requests} calls, "
                f"ratio {row.during_refit.p99_ms / row.outside_refit.p99_ms:.2f})"
            )
    print(
        "\nLatency is per call, measured by this client over loopback gRPC; QPS = calls / wall time of a "
        "closed loop with c callers. Freshness = ack of a one-event IngestEvents -> first Recommend "
        "whose profile_version reaches the ack's. Restart (with model refit): "
        + ", ".join(f"{r.store} {r.items:,} {r.restart_s:.1f} s" for r in rows)
    )


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test preset: " + str(PRESETS["quick"]))
    parser.add_argument("--sizes", help=f"catalogue sizes (default {PRESETS['full']['sizes']})")
    parser.add_argument("--stores", help="lite and/or server (default lite,server)")
    parser.add_argument("--users", type=int, help="users with histories (default 1000; 610 are real)")
    parser.add_argument("--requests", type=int, help="most Recommend calls per concurrency (default 2000)")
    parser.add_argument(
        "--level-seconds", type=float, help="time budget per concurrency level and for freshness (default 20)"
    )
    parser.add_argument("--warmup", type=int, help="Recommend calls before measuring (default 40)")
    parser.add_argument("--freshness-samples", type=int, help="freshness samples (default 100)")
    parser.add_argument("--max-history", type=int, help="last events kept per user, 0 = all (default 200)")
    parser.add_argument("--ingest-batch", type=int, default=500, help="events per IngestEvents")
    parser.add_argument("--ingest-concurrency", type=int, default=4, help="IngestEvents in flight")
    parser.add_argument("--noise", type=float, default=0.025, help="per-dimension sigma of synthetic vectors")
    parser.add_argument("--milvus-uri", default="", help="use this Milvus server instead of starting one")
    parser.add_argument("--milvus-token", default="")
    parser.add_argument(
        "--milvus-pid",
        type=int,
        help="the --milvus-uri server's process on this machine (for its CPU per call)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server process with py-spy during each Recommend load level (where its CPU goes)",
    )
    parser.add_argument(
        "--refit-timeout", type=float, default=600.0, help="seconds to wait for the restart's first refit"
    )
    parser.add_argument(
        "--skip-refit-phase", action="store_true", help="leave out the last phase (Recommend during a refit)"
    )
    parser.add_argument(
        "--reuse-catalogue",
        action="store_true",
        help="on a --milvus-uri server whose items collection already holds the size's row count "
        "(written by an earlier run with the same --seed and --noise), skip writing the catalogue "
        "(at 1M items that is ~20 min of writing and indexing)",
    )
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--work-dir", type=Path, help="data directories go here (default: a temp dir, removed)"
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "driftwise-serving.json")
    args = parser.parse_args(argv)
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


async def run(args: argparse.Namespace, work: Path) -> tuple[list[Row], dict[str, Any]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = [s.strip() for s in args.stores.split(",")]
    unknown = set(stores) - {"lite", "server"}
    if unknown:
        raise SystemExit(f"unknown store(s) {sorted(unknown)}: use lite and/or server")
    # only the movies a catalogue uses are encoded (the --quick preset needs 2,000 of 9,742)
    movies = load_movies()[: max(int(size) for size in args.sizes.split(","))]
    vectors = item_vectors(movies, EVAL_CACHE, lambda line: print(line, flush=True))
    ratings = load_ratings()
    now = time.time()
    composition: list[str] = []
    catalogues = {}
    for size in sizes:
        catalogue, cosine = build_catalogue(movies, vectors, size, args.noise, args.seed)
        real = min(size, len(movies))
        catalogues[size] = (catalogue, real)
        line = f"{size:,} items: {real:,} real MovieLens movies with real encoder vectors"
        if size > real:
            line += (
                f" + {size - real:,} synthetic items with GENERATED vectors (random real item's vector + "
                f"N(0, {args.noise}^2) per dimension, renormalised; mean cosine to source {cosine:.3f})"
            )
        composition.append(line)
    histories = {
        size: build_histories(
            ratings, {it.item_id for it in catalogues[size][0]}, args.users, args.max_history, args.seed, now
        )
        for size in sizes
    }
    users = sorted({r.user_id for r in histories[sizes[0]]})
    real_users = sum(not u.startswith("replay-") for u in users)
    composition.append(
        f"{len(users):,} users: {real_users} real MovieLens users + {len(users) - real_users} replaying a "
        f"random real user's history under a new id, shifted 0-30 days earlier; times shifted so the last "
        f"rating was 1 h ago; last {args.max_history or 'all'} events per user; "
        f"{', '.join(f'{len(h):,} events at {s:,} items' for s, h in histories.items())} "
        f"(ratings -> VIEW/LIKE/SKIP/DISLIKE with item_id), IngestEvents x{args.ingest_batch}, "
        f"{args.ingest_concurrency} in flight"
    )
    composition.append(
        f"Recommend: count 10, random users, per concurrency {args.requests} calls or "
        f"{args.level_seconds:g} s, whichever ends first, after {args.warmup} warm-up calls; "
        f"up to {args.freshness_samples} freshness samples (same time budget)"
    )
    for line in composition:
        print(line, flush=True)

    print("starting the shared local Triton ...", flush=True)
    triton = LocalTritonServer(
        REPO_ROOT / "model_repository", models=["text_encoder"], log_path=work / "triton.log"
    )
    await asyncio.to_thread(triton.start)
    rows: list[Row] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for store_name in stores:
                if store_name == "lite":
                    store = StoreTarget("lite", "")
                else:
                    store = await stack.enter_async_context(milvus_server(args, work))
                for size in sizes:
                    catalogue, real = catalogues[size]
                    rows.append(
                        await bench_one(
                            store,
                            catalogue,
                            real,
                            histories[size],
                            users,
                            args,
                            triton.grpc_url,
                            triton.pid,
                            work / f"{store_name}-{size}",
                        )
                    )
    finally:
        await asyncio.to_thread(triton.stop)
    context = {
        "machine": machine(),
        "commit": commit_hash(),
        "composition": composition,
    }
    return rows, context


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="driftwise-serving-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        rows, context = asyncio.run(run(args, work))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    context["wall_s"] = round(time.perf_counter() - started, 1)
    report(rows, context)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        **context,
        "options": options,
        "targets": {
            "recommend_p99_ms": {f"{store}@{size}": ms for (store, size), ms in P99_TARGETS_MS.items()},
            "freshness_p99_ms": FRESHNESS_P99_TARGET_MS,
            "ingest_events_per_s": INGEST_TARGET_EVENTS_S,
        },
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nJSON: {args.out}; whole run {context['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
