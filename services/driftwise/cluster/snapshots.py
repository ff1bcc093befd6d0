"""Profile snapshots of cluster mode: each user's profile in a JetStream key-value bucket.

Bucket ``DRIFTWISE_PROFILES`` (history 1, no TTL, ``replicas`` copies), one key per user:
``p.<partition>.<user key>``, the user key being the URL-safe base64 of the UTF-8 user id without
padding (user ids may hold characters a KV key may not: dots, spaces, anything non-ASCII). The
partition in the key lets a worker list its partitions' users without reading the others.

A value is a :class:`Snapshot`: the profile's bytes (:meth:`UserProfile.to_bytes`) and
``applied_seq``, the stream sequence of the last event applied to it. The worker skips events at
or below it: the snapshot and its position are one write, so an event is in a profile exactly
when the profile's sequence covers it, whoever applied it and however often it was delivered.
With them: ``seen_item_ids``, every item id of an event applied to the profile (what Recommend
excludes, as ``EventLog.seen_item_ids``), and ``duplicate_seqs``, the sequences of resends the
worker skipped as already in the profile that the partition's position had not yet passed
(:mod:`driftwise.cluster.worker` says why the counts need them).

Each partition also has its applied :class:`Position`, key ``pos.<partition>``: ``seq``, every
event of the partition at or below it is in its user's snapshot, and ``counts``, the partition's
positive events per item (``EventLog.item_counts``: events with an item whose type is not in
``NEGATIVE_TYPES``) up to ``seq``. The two are one value, so one compare-and-set moves both: the
worker writes it after a batch's snapshots (it is the worker's "ack"), adding the batch's counts;
a new owner reads the partition from the next sequence on. :meth:`ProfileSnapshots.item_counts`
sums the partitions'. Every batch rewrites the partition's whole count map: a value must stay
under the server's ``max_payload`` (1 MiB by default), some tens of thousands of items per
partition.

Writes are compare-and-set on the key's revision (:meth:`ProfileSnapshots.put`): a writer that
read revision r can only replace revision r. If another writer (a partition's new owner, a
DeleteUser) wrote since, the write fails with :class:`Fenced` and the caller must stop writing
that partition: it no longer knows the profile. Reads go to the bucket's stream leader
(``direct=False``): a follower might serve a revision the leader already replaced, and every
write based on it would be fenced.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from driftwise.cluster.event_stream import TRANSIENT_ERRORS
from driftwise.cluster.partitions import partition_of, user_key, user_of_key
from driftwise.errors import UnavailableError
from driftwise.model.profile import UserProfile

__all__ = ["BUCKET", "Fenced", "Position", "ProfileSnapshots", "Snapshot", "SnapshotFormatError"]

BUCKET = "DRIFTWISE_PROFILES"
# 2: seen item ids and duplicate seqs in snapshots, item counts in positions; 3: a snapshot's
# counted items and forgets, a forgotten user (no profile)
FORMAT = 3
# format, applied_seq, writer's fencing token, number of duplicate seqs, bytes of the JSON object
# (seen item ids, counted items, forgets); then the duplicate seqs (u64 each), the JSON, the
# profile (nothing: forgotten)
_HEADER = struct.Struct("<BQQII")
_SEQ = struct.Struct("<Q")
_POSITION = struct.Struct("<BQ")  # format, applied position; then its counts, a JSON object
_STREAM_IN_USE = 10058
_WRONG_LAST_SEQUENCE = 10071
_FIRST_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 1.0
_READ_TRY_S = 1.0  # a read takes milliseconds; one unanswered for a second went to no leader
_MAX_READ_BACKOFF_S = 0.25
_LIST_TIMEOUT_S = 5.0
# create() reads the key after a refusal; a tombstone purged in between reads as not found
_RETRY: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, nats.js.errors.KeyNotFoundError)


class Fenced(RuntimeError):
    """A compare-and-set write found another revision: someone wrote the profile since it was
    read (the partition has a new owner, or the user was deleted). Stop writing the partition."""


class SnapshotFormatError(ValueError):
    """A value in the bucket that is not a snapshot of a known format."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    profile: UserProfile | None
    """None: the user was forgotten (DeleteUserData) and has no event since."""
    applied_seq: int
    """Stream sequence of the last event applied to ``profile`` (0: none yet)."""
    token: int = 0
    """Fencing token of the lease it was written under (0: not written by a worker)."""
    seen_item_ids: tuple[str, ...] = ()
    """Every item id of an event applied to ``profile``, sorted (deterministic bytes)."""
    duplicate_seqs: tuple[int, ...] = ()
    """Sequences at or below ``applied_seq`` skipped as resends of an event in the profile,
    those the partition's position had not passed when written (sorted)."""
    counted: Counter[str] = field(default_factory=Counter)
    """Positive events per item among those applied to ``profile``: the user's share of the
    partition's item counts, which forgetting the user takes out."""
    forgets: dict[int, Counter[str]] = field(default_factory=dict)
    """The sequences of forget messages at or below ``applied_seq`` that the partition's position
    had not passed when written, with what each took out of the item counts."""

    @property
    def forgotten(self) -> bool:
        return self.profile is None

    def to_bytes(self) -> bytes:
        meta = {
            "seen": self.seen_item_ids,
            "counted": dict(sorted(self.counted.items())),
            "forgets": {str(seq): dict(sorted(c.items())) for seq, c in sorted(self.forgets.items())},
        }
        encoded = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
        header = _HEADER.pack(FORMAT, self.applied_seq, self.token, len(self.duplicate_seqs), len(encoded))
        seqs = b"".join(_SEQ.pack(seq) for seq in self.duplicate_seqs)
        profile = b"" if self.profile is None else self.profile.to_bytes()
        return b"".join([header, seqs, encoded, profile])

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        if len(data) < _HEADER.size or data[0] != FORMAT:
            raise SnapshotFormatError(f"not a profile snapshot of format {FORMAT} ({len(data)} bytes)")
        _, applied_seq, token, n_seqs, n_meta = _HEADER.unpack_from(data)
        offset = _HEADER.size + n_seqs * _SEQ.size
        if len(data) < offset + n_meta:
            raise SnapshotFormatError(f"truncated profile snapshot ({len(data)} bytes)")
        seqs = tuple(seq for (seq,) in _SEQ.iter_unpack(data[_HEADER.size : offset]))
        meta = json.loads(data[offset : offset + n_meta])
        rest = data[offset + n_meta :]
        return cls(
            UserProfile.from_bytes(rest) if rest else None,
            applied_seq,
            token,
            tuple(meta["seen"]),
            seqs,
            _counter(meta["counted"]),
            {int(seq): _counter(c) for seq, c in meta["forgets"].items()},
        )


def _counter(counts: dict[str, int]) -> Counter[str]:
    return Counter({str(item): int(n) for item, n in counts.items()})


@dataclass(frozen=True, slots=True)
class Position:
    """A partition's applied position and its positive events per item up to it."""

    seq: int = 0
    """Every event of the partition at or below it is in its user's snapshot (0: none yet)."""
    counts: Counter[str] = field(default_factory=Counter)
    """Positive events per item among the partition's events at or below ``seq``."""

    def advanced(self, seq: int, added: Counter[str]) -> Position:
        return Position(seq, self.counts + added)

    def to_bytes(self) -> bytes:
        counts = json.dumps(dict(sorted(self.counts.items())), separators=(",", ":"), ensure_ascii=False)
        return _POSITION.pack(FORMAT, self.seq) + counts.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Position:
        if len(data) < _POSITION.size or data[0] != FORMAT:
            found = data[0] if data else None
            raise SnapshotFormatError(f"an applied position of format {found!r}, not {FORMAT}")
        _, seq = _POSITION.unpack_from(data)
        return cls(seq, _counter(json.loads(data[_POSITION.size :])))


class ProfileSnapshots:
    """Each user's :class:`Snapshot` in a KV bucket; build it with :meth:`open`."""

    def __init__(
        self, kv: KeyValue, *, partitions: int, write_deadline_s: float = 15.0, read_deadline_s: float = 15.0
    ) -> None:
        self._kv = kv
        self.partitions = partitions
        self.write_deadline_s = write_deadline_s
        self.read_deadline_s = read_deadline_s

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        *,
        partitions: int,
        bucket: str = BUCKET,
        replicas: int = 1,
        write_deadline_s: float = 15.0,
        read_deadline_s: float = 15.0,
    ) -> ProfileSnapshots:
        """Create the bucket, or open it as it is (every worker and replica calls this)."""
        try:
            kv = await js.create_key_value(
                bucket=bucket,
                history=1,
                replicas=replicas,
                storage=api.StorageType.FILE,
                direct=False,
            )
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_IN_USE:
                raise
            kv = await js.key_value(bucket)
        return cls(
            kv, partitions=partitions, write_deadline_s=write_deadline_s, read_deadline_s=read_deadline_s
        )

    def key(self, user_id: str) -> str:
        return f"p.{partition_of(user_id, self.partitions)}.{user_key(user_id)}"

    async def get(self, user_id: str) -> tuple[Snapshot | None, int]:
        """The user's snapshot and its revision, the base of the next :meth:`put`; (None, 0)
        when there is none."""
        entry = await self._entry(self.key(user_id))
        if entry is None or entry.value is None or entry.revision is None:
            return None, 0
        return Snapshot.from_bytes(entry.value), entry.revision

    async def put(self, user_id: str, snapshot: Snapshot, expected_revision: int | None) -> int:
        """Write ``snapshot`` if the key is still at ``expected_revision`` (None or 0: if there
        is no snapshot); returns the new revision. Raises :class:`Fenced` if another writer wrote
        since. Retries what a leader election fails, up to ``write_deadline_s``; a write whose
        answer was lost and that did land is recognised (the bucket holds exactly these bytes)."""
        return await self._compare_and_set(self.key(user_id), snapshot.to_bytes(), expected_revision)

    async def position(self, partition: int) -> tuple[Position, int]:
        """The partition's applied position (seq 0, no counts: none yet) and its revision."""
        entry = await self._entry(f"pos.{partition}")
        if entry is None or not entry.value or entry.revision is None:
            return Position(), 0
        return Position.from_bytes(entry.value), entry.revision

    async def put_position(self, partition: int, position: Position, expected_revision: int | None) -> int:
        """Move the partition's applied position and its counts to ``position`` in one write
        (compare-and-set, as :meth:`put`)."""
        return await self._compare_and_set(f"pos.{partition}", position.to_bytes(), expected_revision)

    async def item_counts(self) -> Counter[str]:
        """Positive events per item over every partition's applied position (each partition
        read once, concurrently: a sum of positions each read at its own moment)."""
        positions = await asyncio.gather(*(self.position(p) for p in range(self.partitions)))
        total: Counter[str] = Counter()
        for position, _ in positions:
            total.update(position.counts)
        return total

    async def _compare_and_set(self, key: str, data: bytes, expected_revision: int | None) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_deadline_s
        backoff = _FIRST_BACKOFF_S
        answer_lost = False
        while True:
            try:
                return await self._write(key, data, expected_revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                if answer_lost and (landed := await self._landed(key, data)) is not None:
                    return landed
                raise Fenced(
                    f"{key} changed since revision {expected_revision}: another writer wrote it "
                    f"(the partition has a new owner, or the user was deleted)"
                ) from None
            except _RETRY:
                if loop.time() >= deadline:
                    raise
                answer_lost = True
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, _MAX_BACKOFF_S)

    async def _write(self, key: str, data: bytes, expected_revision: int | None) -> int:
        if not expected_revision:
            return await self._kv.create(key, data)  # also over a deleted key's tombstone
        return await self._kv.update(key, data, last=expected_revision)

    async def _landed(self, key: str, data: bytes) -> int | None:
        """The revision of ``data`` if it is the key's current value."""
        entry = await self._entry(key)
        return entry.revision if entry is not None and entry.value == data else None

    async def _entry(self, key: str) -> KeyValue.Entry | None:
        """The key's entry (None: never written, or deleted). A read sent while the bucket has no
        leader (an election after its leader's node died) is never answered: each try waits
        ``_READ_TRY_S``, and tries go on until ``read_deadline_s``, so a read (a Recommend's)
        is answered soon after the new leader is elected, not a whole request timeout later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_deadline_s
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                return await asyncio.wait_for(self._kv.get(key), _READ_TRY_S)
            except nats.js.errors.KeyNotFoundError:  # never written, or deleted
                return None
            except TRANSIENT_ERRORS as exc:
                if loop.time() >= deadline:  # no leader for that long: the callers answer UNAVAILABLE
                    raise UnavailableError(f"the profile store (JetStream) did not answer: {exc!r}") from exc
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, _MAX_READ_BACKOFF_S)

    async def delete(self, user_id: str, expected_revision: int) -> None:
        """Delete the user's snapshot if it is still at ``expected_revision`` (else
        :class:`Fenced`); a writer holding an older revision is fenced by it."""
        try:
            await self._kv.delete(self.key(user_id), last=expected_revision)
        except nats.js.errors.BadRequestError as exc:  # nats-py's delete does not translate it
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
            raise Fenced(f"{self.key(user_id)} changed since revision {expected_revision}") from None

    async def users(self, partition: int) -> list[str]:
        """The user ids with a snapshot in ``partition``."""
        watcher = await self._kv.watch(f"p.{partition}.*", ignore_deletes=True, meta_only=True)
        users: list[str] = []
        try:
            # nats-py leaves the watcher untyped; None marks the end of the current keys
            while (entry := await watcher.updates(timeout=_LIST_TIMEOUT_S)) is not None:  # type: ignore[no-untyped-call]
                users.append(user_of_key(entry.key.split(".", 2)[2]))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return users

    async def watch(self, user_id: str) -> AsyncGenerator[Snapshot | None, None]:
        """The user's current snapshot (if any), then each new one as it is written; None when
        it is deleted. Ends when the caller stops iterating (``aclose``)."""
        watcher = await self._kv.watch(self.key(user_id))
        try:
            while True:
                entry = await watcher.updates(timeout=None)  # type: ignore[no-untyped-call]
                if entry is None:  # the end of what was there when the watch began
                    continue
                if entry.operation in (KV_DEL, KV_PURGE):
                    yield None
                elif entry.value:
                    yield Snapshot.from_bytes(entry.value)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
