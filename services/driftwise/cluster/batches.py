"""What one batch of a partition does to its users' snapshots, without I/O: the events each
snapshot does not cover applied to copies of the profiles, the seen items and skipped resends
kept, the positives counted, forgotten users forgotten (the rules: the worker module's
docstring)."""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from driftwise.cluster.event_stream import StoredEvent
from driftwise.cluster.messages import EventMessage, ForgetMessage, MessageFormatError, decode
from driftwise.cluster.snapshots import Snapshot
from driftwise.model.config import InterestModelConfig
from driftwise.model.events import NEGATIVE_TYPES, Event
from driftwise.model.layers import Matrix
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel

_log = logging.getLogger(__name__)


Message = EventMessage | ForgetMessage


@dataclass(slots=True)
class UserState:
    profile: UserProfile | None  # None: no snapshot yet, or forgotten
    revision: int  # compare-and-set base of the next write (0: create)
    applied_seq: int
    seen_item_ids: frozenset[str] = frozenset()
    duplicate_seqs: frozenset[int] = frozenset()
    counted: Counter[str] = field(default_factory=Counter)
    forgets: dict[int, Counter[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot, revision: int) -> UserState:
        return cls(
            snapshot.profile,
            revision,
            snapshot.applied_seq,
            frozenset(snapshot.seen_item_ids),
            frozenset(snapshot.duplicate_seqs),
            snapshot.counted,
            snapshot.forgets,
        )


@dataclass(frozen=True, slots=True)
class Change:
    user: str
    snapshot: Snapshot
    applied: int  # events applied (0: only applied_seq moves, past remembered duplicates)


@dataclass(slots=True)
class _Walk:
    """One user's messages of a batch, walked in stream order (see BatchApplier.apply)."""

    remembered: set[str]  # event ids in the profile (resends of them are skipped)
    counted: Counter[str]
    seen: set[str]
    fresh: list[EventMessage] = field(default_factory=list)  # to apply to the profile
    duplicates: list[int] = field(default_factory=list)
    forgets: dict[int, Counter[str]] = field(default_factory=dict)
    forgot: bool = False
    last_seq: int = 0

    @classmethod
    def of(cls, state: UserState) -> _Walk:
        remembered = {r.event_id for r in state.profile.recent} if state.profile is not None else set()
        return cls(remembered, Counter(state.counted), set(state.seen_item_ids))

    def forget(self, seq: int) -> Counter[str]:
        """Forget the user at ``seq``: what it takes out of the item counts (all the user added)."""
        taken = self.counted
        self.forgets[seq] = taken
        self.remembered, self.counted, self.seen, self.fresh = set(), Counter(), set(), []
        self.forgot = True
        return taken


@dataclass(slots=True)
class Applied:
    """What a batch changes: the users' new snapshots and the positives the position adds."""

    changes: list[Change] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    forgotten: dict[str, int] = field(default_factory=dict)
    """Users with a forget message in the batch: the sequence of their last one."""


def positive_item(event: Event) -> str | None:
    """The item an event counts for in popularity (as EventLog's item_stats), if any."""
    return event.item_id if event.item_id and event.type not in NEGATIVE_TYPES else None


@dataclass(slots=True)
class WorkerStats:
    applied: int = 0
    """Events applied to profiles."""
    skipped_applied: int = 0
    """Events at or below their profile's applied_seq (redelivered, or read again after a takeover)."""
    skipped_duplicate: int = 0
    """Events whose id the profile remembers (a resend stored twice, past the duplicate window)."""
    forgotten: int = 0
    """Forget messages applied (DeleteUserData)."""
    malformed: int = 0
    """Messages that are not event messages of a known format, or of another dimension."""
    batches: int = 0
    restarts: int = 0
    """Partition tasks that ended by a failure, a fencing or a lost lease."""


class BatchApplier:
    def __init__(
        self, topics: TopicModel, config: InterestModelConfig, dimension: int, stats: WorkerStats
    ) -> None:
        self.topics = topics
        self.config = config
        self.dimension = dimension
        self.stats = stats

    def decode(self, batch: list[StoredEvent]) -> dict[str, list[tuple[int, Message]]]:
        """The batch's messages by user, in stream order; malformed ones are skipped (logged and
        counted: they would stop the partition for good)."""
        by_user: dict[str, list[tuple[int, Message]]] = {}
        for stored in batch:
            try:
                message = decode(stored.payload)
            except MessageFormatError as exc:
                self._malformed(stored, str(exc))
                continue
            if isinstance(message, EventMessage) and message.vector.shape != (self.dimension,):
                self._malformed(stored, f"vector of dimension {message.vector.size}, not {self.dimension}")
                continue
            by_user.setdefault(message.user_id, []).append((stored.seq, message))
        return by_user

    def _malformed(self, stored: StoredEvent, why: str) -> None:
        self.stats.malformed += 1
        _log.error("skipping stream message %d (event %r): %s", stored.seq, stored.event_id, why)

    def apply(
        self,
        by_user: dict[str, list[tuple[int, Message]]],
        cache: OrderedDict[str, UserState],
        token: int,
        position: int,
    ) -> Applied:
        """The new snapshots of the users with messages past their applied_seq, built on copies
        (the cache changes only once they are written), and the batch's counts: its events past
        ``position`` (the applied position it moves from), by the module's counting rule, less
        what its forget messages take out."""
        out = Applied()
        walks: dict[str, _Walk] = {}
        for user, messages in by_user.items():
            state = cache[user]
            walk = walks[user] = _Walk.of(state)
            for seq, message in messages:
                if isinstance(message, ForgetMessage):
                    out.forgotten[user] = seq
                if seq <= state.applied_seq:
                    self._recount(message, seq, state, position, out.counts)
                    continue
                walk.last_seq = seq
                if isinstance(message, ForgetMessage):
                    out.counts.subtract(walk.forget(seq))
                    self.stats.forgotten += 1
                elif message.event.event_id in walk.remembered:
                    self.stats.skipped_duplicate += 1
                    walk.duplicates.append(seq)
                else:
                    walk.remembered.add(message.event.event_id)
                    walk.fresh.append(message)
                    if message.event.item_id:
                        walk.seen.add(message.event.item_id)
                    if seq > position and (item := positive_item(message.event)) is not None:
                        out.counts[item] += 1
                        walk.counted[item] += 1
        probs = self._topic_probs({user: walk.fresh for user, walk in walks.items() if walk.fresh})
        now = time.time()
        for user, walk in walks.items():
            if walk.last_seq:
                state = cache[user]
                profile = None if walk.forgot else state.profile
                if walk.fresh:
                    profile = profile.copy() if profile is not None else self._new_profile(user)
                    vectors = np.stack([m.vector for m in walk.fresh]).astype(np.float64)
                    texts = [m.remembered for m in walk.fresh]
                    events = [m.event for m in walk.fresh]
                    profile.apply_many(events, vectors, probs[user], texts, self.config, now)
                out.changes.append(self._change(user, state, walk, profile, token, position))
        return out

    def _recount(
        self, message: Message, seq: int, state: UserState, position: int, counts: Counter[str]
    ) -> None:
        """A message its snapshot covers, read again: its count, lost with the position write
        that never happened, is counted now (not if it was a skipped resend)."""
        if isinstance(message, ForgetMessage):
            if seq > position:
                counts.subtract(state.forgets.get(seq, Counter()))
            return
        self.stats.skipped_applied += 1
        item = positive_item(message.event) if seq > position else None
        if item is not None and seq not in state.duplicate_seqs:
            counts[item] += 1

    @staticmethod
    def _change(
        user: str, state: UserState, walk: _Walk, profile: UserProfile | None, token: int, position: int
    ) -> Change:
        # only duplicates: the sequence moves on all the same, so a redelivery is not checked
        # against ids the profile may have forgotten by then. Skipped resends and forgets at or
        # below the position are never read again: no longer needed.
        skipped = [s for s in state.duplicate_seqs if s > position] + walk.duplicates
        forgets = {s: c for s, c in state.forgets.items() if s > position} | walk.forgets
        snapshot = Snapshot(
            profile,
            walk.last_seq,
            token,
            tuple(sorted(walk.seen)),
            tuple(sorted(skipped)),
            +walk.counted,
            forgets,
        )
        return Change(user, snapshot, len(walk.fresh))

    def _topic_probs(self, fresh: dict[str, list[EventMessage]]) -> dict[str, Matrix]:
        """Each user's rows of one topic assignment over the batch (one matrix product)."""
        if not fresh:
            return {}
        matrix = np.stack([m.vector for messages in fresh.values() for m in messages]).astype(np.float64)
        probs = self.topics.assign(matrix)
        split: dict[str, Matrix] = {}
        start = 0
        for user, messages in fresh.items():
            split[user] = probs[start : start + len(messages)]
            start += len(messages)
        return split

    def _new_profile(self, user: str) -> UserProfile:
        return UserProfile.new(
            user, self.config, self.dimension, self.topics.size, topics=self.topics.fingerprint
        )
