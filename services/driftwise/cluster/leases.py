"""Which profile worker applies which partition: leases in a JetStream key-value bucket.

Keys in the bucket (``DRIFTWISE_LEASES``, history 1):

* ``partition.<n>`` — the lease of partition n, value ``{"worker": id, "token": t}``. Taken with
  ``create`` (succeeds only when the key is absent or deleted), renewed with ``update`` against
  the revision this worker last wrote (compare-and-set: refused once anyone else wrote it),
  released with a compare-and-set ``delete``;
* ``worker.<id>`` — a worker's liveness, rewritten every heartbeat; the live workers are the keys
  present, and each worker's fair share is its slot in their sorted ids:
  ``partitions // live`` plus one for the first ``partitions % live`` (16 over 3: 6, 5, 5).

Expiry is the bucket's TTL (the stream's ``max_age``): every write restarts a key's age, so a key
its writer stopped rewriting disappears ``ttl_s`` after its last write (measured: 3.1 s for a
3 s TTL) and becomes free to ``create``. JetStream also has per-message TTLs (``Nats-TTL``,
server 2.11+), but nats-py 2.16 takes one only on ``create`` (not on ``update``), and every key
here wants the same TTL, so the bucket's is used.

Every heartbeat (``heartbeat_s``) each worker: rewrites its liveness key, renews its leases,
lists the keys, releases leases above its share and creates free ones up to it (all it lacks at
once). A round that fails the way a leader election fails it is tried again every 0.25 s, not a
heartbeat later: a takeover follows the bucket's new leader at once. Timing:

* a dead (or partitioned) worker's partitions are free ``ttl_s`` after its last renewal and
  taken at a survivor's next round: takeover within ``ttl_s + heartbeat_s`` of its death (plus
  a round trip); defaults 6 s + 1.5 s, for a target of "a dead worker's users served again
  within 10 s" (bench/cluster.py's failover phase, a worker and a NATS node SIGKILLed together,
  5 kills: p99 9.0 s; 13.1 s with 10 s + 2 s);
* a joining worker gets its share within two heartbeats (others see it and release, it takes),
  no restart needed; a worker stopped cleanly (SIGTERM) hands its leases back at once;
* false takeovers: a live worker keeps its leases through any stall shorter than
  ``ttl_s - heartbeat_s`` (4.5 s by default: GC pauses and a starved event loop are
  milliseconds to a second) and through lease rounds that fail for as long, each request
  waiting at most ``heartbeat_s``. A leader election of the lease bucket after SIGKILL of its
  leader's node can last longer (measured 3.7-7.5 s on loopback, nats-server 2.15): then every
  worker's leases lapse and each takes a share again in its first round after the election.
  That costs no event (fencing), only a restart of the partitions (readers anew from the
  applied positions, snapshots reloaded, a batch in hand read again): well under a second
  more staleness than the election itself causes, since during it no worker can commit
  anyway (:meth:`PartitionLeases.still_owns` reads the bucket's leader). A TTL that outlasted
  every election (10 s) would make every dead worker's users wait that much longer instead.

Fencing: a lease's token is the revision that created it (a stream sequence: a later owner's
token is always larger). A worker holds a lease locally only until ``sent + ttl_s`` of its last
successful renewal (``sent`` read before the request: the server's expiry counts from its own
later write), so it stops regarding itself as owner before anyone else can create the key.
Before committing applied state it calls :meth:`PartitionLeases.still_owns` (that local check
plus a read from the bucket's stream leader); a store that keeps the largest token per
partition and refuses smaller ones closes the gap between that check and the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from driftwise.cluster.event_stream import TRANSIENT_ERRORS

__all__ = ["BUCKET", "Lease", "OnChange", "PartitionLeases", "ensure_bucket", "fair_share"]

_log = logging.getLogger(__name__)

BUCKET = "DRIFTWISE_LEASES"
DEFAULT_TTL_S = 6.0
DEFAULT_HEARTBEAT_S = 1.5
_PARTITION = "partition."
_WORKER = "worker."
_WORKER_ID = re.compile(r"^[-_=a-zA-Z0-9]+$")  # a KV key token (no dots: keys are <kind>.<id>)
_STREAM_IN_USE = 10058
_FIRST_ROUND_RETRY_S = 0.1
_RETRY_S = 0.25  # after a round failed the way a leader election fails it
_CLOCK_MARGIN_S = 0.2  # local and server clocks tick at slightly different rates

# What a leader election or a reconnect causes; the next round tries again.
_TRANSIENT = TRANSIENT_ERRORS

OnChange = Callable[[int, int | None], Awaitable[None]]
"""Called with (partition, token) once a lease is taken; (partition, None) before a voluntary
release (the worker stops applying it first) and after a lease was lost."""


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    token: int
    """Fencing token: the revision that created the lease (larger for every later owner)."""
    revision: int
    """The revision this worker last wrote: the compare-and-set base of the next renewal."""
    valid_until: float
    """Event-loop time after which this worker must not regard itself as the owner."""


def fair_share(partitions: int, workers: Sequence[str], worker_id: str) -> int:
    """How many partitions ``worker_id`` should hold among ``workers`` (the shares sum to
    ``partitions`` and differ by at most one)."""
    ordered = sorted(set(workers) | {worker_id})
    base, extra = divmod(partitions, len(ordered))
    return base + (1 if ordered.index(worker_id) < extra else 0)


async def ensure_bucket(js: JetStreamContext, *, bucket: str, ttl_s: float, replicas: int) -> KeyValue:
    """Create the lease bucket, or open it; refuses an existing one with another TTL (its keys
    would outlive, or die before, what every worker assumes)."""
    try:
        return await js.create_key_value(
            bucket=bucket,
            ttl=ttl_s,
            history=1,
            replicas=replicas,
            storage=api.StorageType.FILE,
            direct=False,  # reads go to the stream leader: a follower may lag behind a takeover
        )
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != _STREAM_IN_USE:
            raise
    kv = await js.key_value(bucket)
    found = (await kv.status()).ttl
    if found is None or abs(found - ttl_s) > 1e-3:
        raise ValueError(f"lease bucket {bucket} has TTL {found} s, this worker expects {ttl_s} s")
    return kv


class PartitionLeases:
    """This worker's leases over ``partitions`` partitions; :meth:`start` runs the heartbeat."""

    def __init__(
        self,
        kv: KeyValue,
        *,
        worker_id: str,
        partitions: int,
        ttl_s: float = DEFAULT_TTL_S,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        on_change: OnChange | None = None,
    ) -> None:
        if not _WORKER_ID.match(worker_id):
            raise ValueError(f"worker id {worker_id!r} must match {_WORKER_ID.pattern}")
        if not 0 < heartbeat_s < ttl_s / 2:
            raise ValueError("heartbeat_s must be below half of ttl_s: a lease must survive a missed renewal")
        self._kv = kv
        self.worker_id = worker_id
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.on_change = on_change
        """Told of every lease taken, released or lost; settable until :meth:`start` (the profile
        worker sets it on the leases it is given)."""
        self._leases: dict[int, Lease] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.live_workers: list[str] = []
        """The live workers seen in the last round (sorted ids)."""

    @classmethod
    async def open(
        cls,
        nc: NatsClient,
        *,
        worker_id: str,
        partitions: int,
        bucket: str = BUCKET,
        replicas: int = 1,
        ttl_s: float = DEFAULT_TTL_S,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        on_change: OnChange | None = None,
    ) -> PartitionLeases:
        # each request waits at most a heartbeat: a round must not overrun into the next
        js = nc.jetstream(timeout=heartbeat_s)
        kv = await ensure_bucket(js, bucket=bucket, ttl_s=ttl_s, replicas=replicas)
        return cls(
            kv,
            worker_id=worker_id,
            partitions=partitions,
            ttl_s=ttl_s,
            heartbeat_s=heartbeat_s,
            on_change=on_change,
        )

    # ------------------------------------------------------------------ what this worker holds

    def owned(self) -> dict[int, int]:
        """Partition -> fencing token of the leases this worker holds now (locally valid)."""
        now = asyncio.get_running_loop().time()
        return {p: lease.token for p, lease in sorted(self._leases.items()) if now < lease.valid_until}

    def lease(self, partition: int) -> Lease | None:
        return self._leases.get(partition)

    async def still_owns(self, partition: int, token: int) -> bool:
        """Whether this worker still holds ``partition`` under ``token``: the lease is locally
        valid and the bucket (read from its stream leader) still says so."""
        lease = self._leases.get(partition)
        if lease is None or lease.token != token or asyncio.get_running_loop().time() >= lease.valid_until:
            return False
        try:
            entry = await self._kv.get(f"{_PARTITION}{partition}")
        except nats.js.errors.NotFoundError:  # expired, released or deleted
            return False
        return _holder(entry) == (self.worker_id, token)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Register, take a first share, then keep balancing every ``heartbeat_s``. The first
        round is retried through transient errors for up to ``ttl_s`` (a bucket just created on
        a cluster has no leader for a moment)."""
        if self._task is not None:
            raise RuntimeError("already started")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ttl_s
        while True:
            try:
                await self.balance()
                break
            except _TRANSIENT:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(_FIRST_ROUND_RETRY_S)
        self._task = asyncio.create_task(self._run(), name=f"leases-{self.worker_id}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop the heartbeat. ``release``: hand every lease back at once (``on_change`` first)
        and leave the live set, so others take over now; otherwise they expire after ``ttl_s``
        (what a crash does)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._lock:
            if release:
                for partition in list(self._leases):
                    await self._release(partition)
                with contextlib.suppress(*_TRANSIENT):
                    await self._kv.delete(f"{_WORKER}{self.worker_id}")
            self._leases.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        while True:
            began = loop.time()
            pause = self.heartbeat_s
            try:
                await self.balance()
                if failing_since is not None:
                    _log.info(
                        "lease round of %s succeeded after %.1f s", self.worker_id, began - failing_since
                    )
                failing_since = None
            except _TRANSIENT as exc:
                # a leader election (or a reconnect): try again soon, so that a takeover (or a
                # renewal) follows the new leader within a fraction of a heartbeat
                pause = min(self.heartbeat_s, _RETRY_S)
                if failing_since is None:
                    failing_since = began
                    _log.warning(
                        "lease round of %s failed (%r); trying again every %.2f s",
                        self.worker_id,
                        exc,
                        pause,
                    )
            except Exception:
                _log.exception("lease round of %s failed", self.worker_id)
            await asyncio.sleep(max(0.0, began + pause - loop.time()))

    # ------------------------------------------------------------------ one round

    async def balance(self) -> None:
        """One heartbeat: renew (first: a failure later in the round must not cost leases), be
        seen alive, then release or take up to the fair share."""
        async with self._lock:
            await self._drop_expired()
            renewed = await asyncio.gather(*(self._renew(partition) for partition in list(self._leases)))
            failed = [error for error in renewed if error is not None]
            if failed:
                _log.warning(
                    "%s could not renew %d of its %d leases: %r",
                    self.worker_id,
                    len(failed),
                    len(renewed),
                    failed[0],
                )
            await self._kv.put(f"{_WORKER}{self.worker_id}", b"")
            workers, taken = await self._snapshot()
            self.live_workers = sorted(set(workers) | {self.worker_id})
            share = fair_share(self.partitions, self.live_workers, self.worker_id)
            held = sorted(self._leases)
            for partition in held[share:]:
                await self._release(partition)
            free = [p for p in range(self.partitions) if p not in taken and p not in self._leases]
            random.shuffle(free)  # workers short of their share try different partitions first
            while free and len(self._leases) < share:
                # as many at once as the share lacks (a takeover is one round trip, not one per
                # partition); those another worker took first are replaced by the next free ones
                trying, free = free[: share - len(self._leases)], free[share - len(self._leases) :]
                results = await asyncio.gather(*(self._acquire(p) for p in trying), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result

    async def _snapshot(self) -> tuple[list[str], set[int]]:
        """The live worker ids and the partitions with a lease (anyone's), from the bucket's
        current keys (deleted and expired keys are not listed)."""
        watcher = await self._kv.watchall(ignore_deletes=True, meta_only=True)
        workers: list[str] = []
        taken: set[int] = set()
        try:
            # nats-py leaves the watcher untyped; None marks the end of the current keys
            while (entry := await watcher.updates(timeout=self.heartbeat_s)) is not None:  # type: ignore[no-untyped-call]
                if entry.key.startswith(_WORKER):
                    workers.append(entry.key.removeprefix(_WORKER))
                elif entry.key.startswith(_PARTITION):
                    taken.add(int(entry.key.removeprefix(_PARTITION)))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return workers, taken

    async def _acquire(self, partition: int) -> None:
        sent = asyncio.get_running_loop().time()
        value = json.dumps({"worker": self.worker_id}).encode()
        try:
            revision = await self._kv.create(f"{_PARTITION}{partition}", value)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.NotFoundError):
            return  # another worker took it first
        self._leases[partition] = Lease(partition, revision, revision, self._valid_from(sent))
        _log.info("%s took partition %d (token %d)", self.worker_id, partition, revision)
        if self.on_change is not None:
            await self.on_change(partition, revision)

    async def _renew(self, partition: int) -> BaseException | None:
        """Renew one lease; returns the transient error that failed it (it is still held until
        its valid_until, and the next round tries again)."""
        lease = self._leases[partition]
        sent = asyncio.get_running_loop().time()
        value = json.dumps({"worker": self.worker_id, "token": lease.token}).encode()
        try:
            revision = await self._kv.update(f"{_PARTITION}{partition}", value, last=lease.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            # expired, or taken and written by another worker since: it is no longer ours
            await self._forget(partition, "lost")
            return None
        except _TRANSIENT as exc:
            return exc
        self._leases[partition] = replace(lease, revision=revision, valid_until=self._valid_from(sent))
        return None

    def _valid_from(self, sent: float) -> float:
        """A write sent at ``sent`` keeps the key on the server until at least ``sent + ttl_s``."""
        return sent + self.ttl_s - _CLOCK_MARGIN_S

    async def _release(self, partition: int) -> None:
        lease = self._leases[partition]
        if self.on_change is not None:
            await self.on_change(partition, None)  # stop applying before anyone else may start
        del self._leases[partition]
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError, *_TRANSIENT):
            await self._kv.delete(f"{_PARTITION}{partition}", last=lease.revision)
        _log.info("%s released partition %d", self.worker_id, partition)

    async def _drop_expired(self) -> None:
        now = asyncio.get_running_loop().time()
        for partition, lease in list(self._leases.items()):
            if now >= lease.valid_until:
                await self._forget(partition, "expired (no renewal in time)")

    async def _forget(self, partition: int, why: str) -> None:
        del self._leases[partition]
        _log.warning("%s lost partition %d: %s", self.worker_id, partition, why)
        if self.on_change is not None:
            await self.on_change(partition, None)


def _holder(entry: KeyValue.Entry) -> tuple[str, int] | None:
    """(worker id, token) of a lease entry; a fresh lease's token is its own revision."""
    try:
        value = json.loads(entry.value or b"")
    except ValueError:
        return None
    if not isinstance(value, dict) or entry.revision is None:
        return None
    return str(value.get("worker")), int(value.get("token", entry.revision))
