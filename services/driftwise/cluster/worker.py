"""The profile worker of cluster mode: applies each partition's events to its users' profiles.

For every partition whose lease (:mod:`driftwise.cluster.leases`) it holds, a worker runs one
task: read the partition's applied position (:meth:`ProfileSnapshots.position`) and read the
partition in batches from the next sequence on (:meth:`EventStream.reader`, a consumer of the
task's own); group a batch by user; take each user's snapshot (:mod:`driftwise.cluster.snapshots`)
from the task's cache, or the bucket on a miss; apply the events the snapshot does not cover with
``UserProfile.apply_many`` (vectors from the messages, topic probabilities from the TopicModel,
as the embedded engine's write path does); check the lease still holds; write the snapshots,
compare-and-set on the revisions read; only then move the applied position past the batch (the
worker's ack, also compare-and-set). A lost lease or a refused write (:class:`Fenced`) ends the
task at once, the position unmoved: the new owner reads on from there. Any other failure (a
leader election outlasting the retries, a reader whose consumer died with its node) ends it too;
it restarts after ``restart_delay_s`` with a new reader and an empty cache, while the lease holds.

Guarantees:

* Every message stored in the stream is applied to its user's profile exactly once, across
  redeliveries, crashes and takeovers. A snapshot and the sequence of the last event applied to
  it (``applied_seq``) are one compare-and-set write, and a user's events are applied in stream
  order, so an event is in the profile exactly when ``seq <= applied_seq``: events at or below
  are skipped, and a writer that read an older snapshot cannot overwrite a newer one (not even a
  stale owner that missed losing its lease). The partition's position only says where to start
  reading: every event at or below it is in a snapshot already (it moves after the writes), and
  one applied above it is read again and skipped.
* A resend of an event within JetStream's duplicate window (2 min) is not stored again
  (``Nats-Msg-Id`` = event id), so is never applied twice. A resend after the window is a second
  message; the worker skips it when the profile still remembers the event id among its
  ``recent`` events (``InterestModelConfig.recent_events``, 20 by default: the newest by event
  time). Covered: a client retrying minutes later an event among the user's newest ones (the
  usual case). Not covered: a resend, past the window, of an event older (by event time) than the
  user's 20 newest: it is applied a second time (the embedded engine, which checks every event
  id in its log, refuses it).
* Item popularity (``ProfileSnapshots.item_counts``, the embedded ``EventLog.item_counts``):
  each event of the stream counts once, in the position write of the batch whose position first
  passes its sequence, if it has an item, its type is not negative (``NEGATIVE_TYPES``) and it
  is not a resend the worker skips as remembered (one it applies a second time, above, counts
  a second time too). The rule follows the position, not the
  snapshots: an event a snapshot already covers (applied by an owner that died between its
  snapshot writes and its position write) is skipped by the profile but counted all the same,
  since the position that would have counted it was never written. Whether such a covered event
  was a remembered resend the profile can no longer tell, so the snapshot says it:
  ``duplicate_seqs`` keeps the resends it skipped above the position the writer knew (positions
  only move on, so every covered resend a new owner reads again is still listed). A position and
  its counts are one compare-and-set write, so counts are exactly once as the position is.
  Each applied event's item also goes into its snapshot's ``seen_item_ids``.
* A profile in the bucket is always the replay of a prefix of its user's events in the stream.
  How far it lags behind ingest is the worker's backlog; a partition whose worker died is taken
  over ``ttl_s + heartbeat_s`` (lease timing) after the worker's last renewal.

* Forgetting a user (DeleteUserData publishes a :class:`~driftwise.cluster.messages.ForgetMessage`
  on the user's subject). Each snapshot keeps ``counted``, the positive events per item among
  those applied to it: exactly the user's share of the partition's counts, since an event is
  applied once and counted once, each in one write. The worker that reaches the forget message
  has applied every event of the user before it and none after; it takes ``counted`` out of the
  batch's counts, drops the profile, seen items and counts, and keeps the amount taken in the
  snapshot's ``forgets`` under the message's sequence. A new owner that reads the message again
  (the position write was lost) takes the same amount out again, as it counts again the events
  applied before the crash: the counting rule above, with a negative count. The snapshot is
  written with no profile (a forgotten user: GetProfile says NOT_FOUND, Recommend cold-starts);
  only after the position has passed the message are the user's messages up to it purged from
  the stream (purged earlier, an event applied but not yet counted would never be counted) and
  the forgotten snapshot deleted. DeleteUserData waits for that, then purges again, in case the
  worker died between its position write and its purge. Events after the message build a new
  profile.

Not done here yet: a profile built with other topics (fingerprint) is not re-projected (the
embedded engine's refit).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

from opentelemetry import propagate, trace
from opentelemetry.trace import Link

from driftwise.cluster.batches import BatchApplier, Change, Message, UserState, WorkerStats
from driftwise.cluster.event_stream import TRANSIENT_ERRORS, EventStream, ReaderLost, StoredEvent
from driftwise.cluster.leases import OnChange, PartitionLeases
from driftwise.cluster.snapshots import Fenced, Position, ProfileSnapshots
from driftwise.errors import UnavailableError
from driftwise.model.config import InterestModelConfig
from driftwise.model.topics import TopicModel
from driftwise.observability.tracing import tracer

__all__ = ["OnApplied", "ProfileWorker", "WorkerStats"]

_log = logging.getLogger(__name__)

OnApplied = Callable[[Sequence[str]], Awaitable[None]]
"""Called with the user ids whose profiles a batch changed, after the batch is committed (for
the Milvus interest rows and change notifications)."""

_LEASE_MARGIN_S = 0.2  # a fetch must end this long before the lease's local validity does
_RECONCILE_S = 0.25
_FETCH_RETRIES = 5
_FETCH_RETRY_S = 0.1
# a node died with the reader's consumer, a leader election outlasted the retries
_READ_ANEW: tuple[type[BaseException], ...] = (ReaderLost, UnavailableError, *TRANSIENT_ERRORS)
_FORGETTING_FAILURES: tuple[type[BaseException], ...] = (Fenced, *TRANSIENT_ERRORS)


class PartitionLost(RuntimeError):
    """The lease is no longer this task's (expired, taken over, or released)."""


@dataclass(slots=True)
class _Run:
    """One partition task and what a graceful stop needs to know of it."""

    token: int
    stopping: bool = False
    committing: bool = False  # between a fetch that returned events and the position moved past them
    task: asyncio.Task[None] = field(init=False)


class ProfileWorker:
    """Applies the events of the partitions its ``leases`` hold; :meth:`start`, :meth:`stop`."""

    def __init__(
        self,
        events: EventStream,
        leases: PartitionLeases,
        snapshots: ProfileSnapshots,
        topics: TopicModel,
        config: InterestModelConfig,
        dimension: int,
        *,
        batch: int = 256,
        fetch_timeout_s: float = 0.5,
        cache_users: int = 10_000,
        restart_delay_s: float = 0.5,
        on_applied: OnApplied | None = None,
    ) -> None:
        if fetch_timeout_s + _LEASE_MARGIN_S >= leases.ttl_s - leases.heartbeat_s:
            raise ValueError("fetch_timeout_s must be well below the lease TTL minus its heartbeat")
        self.events = events
        self.leases = leases
        self.snapshots = snapshots
        self.topics = topics
        self.config = config
        self.dimension = dimension
        self.batch = batch
        self.fetch_timeout_s = fetch_timeout_s
        self.cache_users = cache_users
        self.restart_delay_s = restart_delay_s
        self.on_applied = on_applied
        self.stats = WorkerStats()
        self.batches = BatchApplier(topics, config, dimension, self.stats)
        self.progress: dict[int, int] = {}
        """Partition -> the applied position this worker last wrote for it."""
        self._tasks: dict[int, _Run] = {}
        self._ended: dict[int, float] = {}  # partition -> loop time its task last failed
        self._lost: dict[int, int] = {}  # partition -> a token the bucket says is not ours
        self._lock = asyncio.Lock()
        self._reconciler: asyncio.Task[None] | None = None
        self._chained: OnChange | None = None

    @property
    def worker_id(self) -> str:
        return self.leases.worker_id

    def applying(self) -> dict[int, int]:
        """Partition -> token of the partition tasks running now."""
        return {p: run.token for p, run in sorted(self._tasks.items()) if not run.task.done()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take a share of the partitions (the leases' first round) and apply them; rebalance
        as workers come and go (the leases' heartbeat), restarting failed partition tasks."""
        if self._reconciler is not None:
            raise RuntimeError("already started")
        self._chained = self.leases.on_change
        self.leases.on_change = self._lease_changed
        await self.leases.start()
        self._reconciler = asyncio.create_task(self._reconcile_loop(), name=f"worker-{self.worker_id}")

    async def stop(self, *, release: bool = True) -> None:
        """``release``: commit the batch in hand on each partition, then hand the leases back
        (others take over at once). Otherwise stop dead, as a crash would: the batch in hand
        dropped wherever it was, leases left to expire."""
        if self._reconciler is not None:
            self._reconciler.cancel()
            await asyncio.wait({self._reconciler})
            self._reconciler = None
        if not release:
            for partition in list(self._tasks):
                await self._stop_partition(partition, graceful=False)
        await self.leases.stop(release=release)  # on release: _lease_changed stops each task first
        for partition in list(self._tasks):
            await self._stop_partition(partition, graceful=release)
        self.leases.on_change = self._chained

    async def _lease_changed(self, partition: int, token: int | None) -> None:
        async with self._lock:
            if token is None:
                await self._stop_partition(partition, graceful=True)
            else:
                self._start_partition(partition, token)
        if self._chained is not None:
            await self._chained(partition, token)

    async def _reconcile_loop(self) -> None:
        """Start tasks for held partitions without one (a failed task, after the restart delay;
        a lease taken while a callback was missed) and stop those whose lease is gone."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_RECONCILE_S)
            async with self._lock:
                owned = self.leases.owned()
                for partition in [p for p in self._tasks if p not in owned]:
                    await self._stop_partition(partition, graceful=False)
                for partition, token in owned.items():
                    running = self._tasks.get(partition)
                    if running is not None and running.token == token and not running.task.done():
                        continue
                    if self._lost.get(partition) == token:
                        continue  # the lease is someone else's: the next renewal drops it
                    if loop.time() >= self._ended.get(partition, 0.0) + self.restart_delay_s:
                        self._start_partition(partition, token)

    def _start_partition(self, partition: int, token: int) -> None:
        running = self._tasks.get(partition)
        if running is not None and not running.task.done():
            if running.token == token:
                return
            running.task.cancel()  # a stale token: that task cannot write anyway
        run = _Run(token)
        run.task = asyncio.create_task(self._guarded(partition, run), name=f"partition-{partition}")
        self._tasks[partition] = run

    async def _stop_partition(self, partition: int, *, graceful: bool) -> None:
        """Stop a partition task; ``graceful``: let it commit the batch it holds (one waiting for
        events is cancelled: the next reader starts at the applied position)."""
        run = self._tasks.pop(partition, None)
        if run is None:
            return
        run.stopping = True
        if graceful and run.committing:
            # bounded: a release runs inside the leases' round, which must not miss renewals
            await asyncio.wait({run.task}, timeout=self.leases.heartbeat_s)
        run.task.cancel()
        # asyncio.wait, not `await task` under suppress(CancelledError): that would also swallow
        # a cancellation of this caller (the reconcile loop would then never stop)
        await asyncio.wait({run.task})

    # ------------------------------------------------------------------ one partition

    async def _guarded(self, partition: int, run: _Run) -> None:
        token = run.token
        try:
            await self._run_partition(partition, run)
        except asyncio.CancelledError:
            raise
        except PartitionLost as exc:
            _log.warning("%s stops partition %d (token %d): %s", self.worker_id, partition, token, exc)
            self._lost[partition] = token
            self._failed(partition)
        except _READ_ANEW as exc:
            _log.warning("%s reads partition %d anew: %r", self.worker_id, partition, exc)
            self._failed(partition)
        except Fenced as exc:  # a new owner, or a deleted user: a restart checks the lease first
            _log.warning("%s stops partition %d (token %d): %s", self.worker_id, partition, token, exc)
            self._failed(partition)
        except Exception:
            _log.exception(
                "%s: partition %d failed; it restarts while the lease is held", self.worker_id, partition
            )
            self._failed(partition)

    def _failed(self, partition: int) -> None:
        self.stats.restarts += 1
        self._ended[partition] = asyncio.get_running_loop().time()

    async def _run_partition(self, partition: int, run: _Run) -> None:
        token = run.token
        if not await self.leases.still_owns(partition, token):
            raise PartitionLost(f"partition {partition} under token {token} is not held")
        position = await self.snapshots.position(partition)
        reader = await self.events.reader(partition, start_seq=position[0].seq + 1, token=token)
        cache: OrderedDict[str, UserState] = OrderedDict()
        try:
            failures = 0
            while not run.stopping:
                if not await self._lease_lasts_a_fetch(partition, token):
                    continue
                try:
                    batch = await reader.fetch(self.batch, self.fetch_timeout_s)
                    failures = 0
                except TRANSIENT_ERRORS:
                    # a reconnect; a consumer whose node died: a few tries, then a new reader
                    failures += 1
                    if failures > _FETCH_RETRIES:
                        raise
                    await asyncio.sleep(_FETCH_RETRY_S)
                    continue
                if batch:
                    run.committing = True
                    position = await self._commit(partition, token, position, batch, cache)
                    run.committing = False
        finally:
            await reader.close()

    async def _lease_lasts_a_fetch(self, partition: int, token: int) -> bool:
        """Whether the lease stays locally valid through one more fetch (work past its end would
        be thrown away at the commit's ownership check); waits a little when it does not (a
        renewal may be late during a leader election); raises once the lease is gone."""
        lease = self.leases.lease(partition)
        now = asyncio.get_running_loop().time()
        if lease is None or lease.token != token or now >= lease.valid_until:
            raise PartitionLost(f"lease of partition {partition} under token {token} is gone")
        if lease.valid_until - now > self.fetch_timeout_s + _LEASE_MARGIN_S:
            return True
        await asyncio.sleep(0.05)
        return False

    async def _commit(
        self,
        partition: int,
        token: int,
        position: tuple[Position, int],
        batch: list[StoredEvent],
        cache: OrderedDict[str, UserState],
    ) -> tuple[Position, int]:
        """Apply ``batch``, write the changed snapshots, then move the applied position past
        it with the batch's counts; returns the new position and its revision."""
        with _applying_span(partition, batch):
            by_user = self.batches.decode(batch)
            await self._load(by_user, cache)
            applied = self.batches.apply(by_user, cache, token, position[0].seq)
            if not await self.leases.still_owns(partition, token):
                raise PartitionLost(f"partition {partition} under token {token} is no longer held")
            await self._write(applied.changes, cache)
            moved = position[0].advanced(batch[-1].seq, applied.counts)
            revision = await self.snapshots.put_position(partition, moved, position[1])
            self.progress[partition] = moved.seq
            self.stats.batches += 1
            await self._finish_forgetting(applied.forgotten, cache)
            await self._notify([change.user for change in applied.changes if change.applied])
            return moved, revision

    async def _finish_forgetting(self, forgotten: dict[str, int], cache: OrderedDict[str, UserState]) -> None:
        """Once the position has passed their forget messages (applied now, or read again after
        a crash): purge the users' messages up to them, and drop the snapshots of users still
        forgotten (what they held is no longer needed). A failure only leaves what
        DeleteUserData purges again, or a small marker."""
        for user, seq in forgotten.items():
            try:
                await self.events.purge_user(user, through_seq=seq)
                state = cache.get(user)
                if state is not None and state.profile is None and state.revision:
                    await self.snapshots.delete(user, state.revision)
                    cache[user] = UserState(None, 0, state.applied_seq)
            except _FORGETTING_FAILURES as exc:
                cache.pop(user, None)
                _log.warning("forgetting user %r: %r (DeleteUserData purges again)", user, exc)

    async def _notify(self, applied: list[str]) -> None:
        if applied and self.on_applied is not None:
            try:
                await self.on_applied(applied)
            except Exception:
                _log.exception("on_applied failed for %d users", len(applied))

    async def _load(
        self, by_user: dict[str, list[tuple[int, Message]]], cache: OrderedDict[str, UserState]
    ) -> None:
        """Read the snapshots of users not in the cache (concurrently: one round trip)."""
        missing = [user for user in by_user if user not in cache]
        loaded = await asyncio.gather(*(self.snapshots.get(user) for user in missing))
        for user, (snapshot, revision) in zip(missing, loaded, strict=True):
            if snapshot is None:
                cache[user] = UserState(None, revision, 0)
            else:
                cache[user] = UserState.of(snapshot, revision)
        for user in by_user:
            cache.move_to_end(user)
        while len(cache) > max(self.cache_users, len(by_user)):
            cache.popitem(last=False)

    async def _write(self, changes: list[Change], cache: OrderedDict[str, UserState]) -> None:
        """Compare-and-set every snapshot (concurrently); the cache takes those written. Raises
        the first failure (Fenced: another writer; the task ends unacked)."""
        results = await asyncio.gather(
            *(self.snapshots.put(c.user, c.snapshot, cache[c.user].revision) for c in changes),
            return_exceptions=True,
        )
        failure: BaseException | None = None
        for change, result in zip(changes, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                cache.pop(change.user, None)
            else:
                cache[change.user] = UserState.of(change.snapshot, result)
                self.stats.applied += change.applied
        if failure is not None:
            raise failure


_MAX_LINKS = 32


@contextlib.contextmanager
def _applying_span(partition: int, batch: list[StoredEvent]) -> Iterator[None]:
    """One span per batch, in the trace of its first traced event's publish (so a request's trace
    goes on from ingest into the worker), linked to the others' traces (one batch holds the
    events of many requests)."""
    # only the contexts the span uses are parsed (a batch holds up to hundreds of events)
    traced = itertools.islice((e.trace_context for e in batch if e.trace_context), 1 + _MAX_LINKS)
    contexts = [propagate.extract(carrier) for carrier in traced]
    links = [Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
    attributes = {"partition": partition, "events": len(batch)}
    parent = contexts[0] if contexts else None
    with tracer.start_as_current_span("worker.apply", context=parent, links=links, attributes=attributes):
        yield
