"""What one batch of a partition does to its users' snapshots, without I/O: the events each
snapshot does not cover applied to copies of the profiles, the seen items and skipped resends
kept, the positives counted (the rules: the worker module's docstring)."""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from driftwise.cluster.event_stream import StoredEvent
from driftwise.cluster.messages import EventMessage, MessageFormatError, decode
from driftwise.cluster.snapshots import Snapshot
from driftwise.model.config import InterestModelConfig
from driftwise.model.events import NEGATIVE_TYPES, Event
from driftwise.model.layers import Matrix
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class UserState:
    profile: UserProfile | None  # None: no snapshot yet
    revision: int  # compare-and-set base of the next write (0: create)
    applied_seq: int
    seen_item_ids: frozenset[str] = frozenset()
    duplicate_seqs: frozenset[int] = frozenset()

    @classmethod
    def of(cls, snapshot: Snapshot, revision: int) -> UserState:
        return cls(
            snapshot.profile,
            revision,
            snapshot.applied_seq,
            frozenset(snapshot.seen_item_ids),
            frozenset(snapshot.duplicate_seqs),
        )


@dataclass(frozen=True, slots=True)
class Change:
    user: str
    snapshot: Snapshot
    applied: int  # events applied (0: only applied_seq moves, past remembered duplicates)


@dataclass(slots=True)
class Applied:
    """What a batch changes: the users' new snapshots and the positives the position adds."""

    changes: list[Change] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


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

    def decode(self, batch: list[StoredEvent]) -> dict[str, list[tuple[int, EventMessage]]]:
        """The batch's event messages by user, in stream order; malformed ones are skipped
        (logged and counted: they would stop the partition for good)."""
        by_user: dict[str, list[tuple[int, EventMessage]]] = {}
        for stored in batch:
            try:
                message = decode(stored.payload)
            except MessageFormatError as exc:
                self._malformed(stored, str(exc))
                continue
            if message.vector.shape != (self.dimension,):
                self._malformed(stored, f"vector of dimension {message.vector.size}, not {self.dimension}")
                continue
            by_user.setdefault(message.event.user_id, []).append((stored.seq, message))
        return by_user

    def _malformed(self, stored: StoredEvent, why: str) -> None:
        self.stats.malformed += 1
        _log.error("skipping stream message %d (event %r): %s", stored.seq, stored.event_id, why)

    def apply(
        self,
        by_user: dict[str, list[tuple[int, EventMessage]]],
        cache: OrderedDict[str, UserState],
        token: int,
        position: int,
    ) -> Applied:
        """The new snapshots of the users with events past their applied_seq, built on copies
        (the cache changes only once they are written), and the batch's counts: its events past
        ``position`` (the applied position it moves from), by the module's counting rule."""
        out = Applied()
        fresh: dict[str, list[EventMessage]] = {}
        last_seq: dict[str, int] = {}
        duplicates: dict[str, list[int]] = {}
        for user, messages in by_user.items():
            state = cache[user]
            remembered = {r.event_id for r in state.profile.recent} if state.profile is not None else set()
            for seq, message in messages:
                item = positive_item(message.event) if seq > position else None
                if seq <= state.applied_seq:
                    self.stats.skipped_applied += 1
                    # applied, but its count was lost with its position write: counted now
                    if item is not None and seq not in state.duplicate_seqs:
                        out.counts[item] += 1
                    continue
                last_seq[user] = seq
                if message.event.event_id in remembered:
                    self.stats.skipped_duplicate += 1
                    duplicates.setdefault(user, []).append(seq)
                    continue
                remembered.add(message.event.event_id)
                fresh.setdefault(user, []).append(message)
                if item is not None:
                    out.counts[item] += 1
        probs = self._topic_probs(fresh)
        now = time.time()
        for user, seq in last_seq.items():
            profile = cache[user].profile
            applying = fresh.get(user, [])
            if applying:
                profile = profile.copy() if profile is not None else self._new_profile(user)
                vectors = np.stack([m.vector for m in applying]).astype(np.float64)
                texts = [m.remembered for m in applying]
                profile.apply_many([m.event for m in applying], vectors, probs[user], texts, self.config, now)
            # only duplicates: the sequence moves on all the same, so a redelivery is not
            # checked against ids the profile may have forgotten by then
            assert profile is not None  # a user without a snapshot has no remembered ids
            state = cache[user]
            seen = state.seen_item_ids.union(m.event.item_id for m in applying if m.event.item_id)
            # those at or below the position are never read again: no longer needed
            skipped = [s for s in state.duplicate_seqs if s > position] + duplicates.get(user, [])
            snapshot = Snapshot(profile, seq, token, tuple(sorted(seen)), tuple(sorted(skipped)))
            out.changes.append(Change(user, snapshot, len(applying)))
        return out

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
