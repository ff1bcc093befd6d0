"""The write path: events validated by the api are checked against the catalogue, applied to copies
of their users' profiles and recorded with them in one transaction of the log; only then do the
copies replace the cached profiles (all or nothing). Each change is published to WatchProfile
streams and mirrored to Milvus behind the acknowledgement (`InterestMirror`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from driftwise.engine.catalogue import Catalogue
from driftwise.engine.log_access import LogAccess
from driftwise.engine.popularity import Popularity
from driftwise.engine.profiles import Profiles
from driftwise.engine.types import Ack
from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.model.config import InterestModelConfig
from driftwise.model.impressions import Impressions, Matched, OtherUsersImpression
from driftwise.model.layers import Vector
from driftwise.model.profile import UserProfile
from driftwise.observability.tracing import tracer
from driftwise.privacy import UserIdScheme
from driftwise.storage.event_log import EventLog, LoggedEvent
from driftwise.storage.interest_mirror import InterestMirror
from driftwise.storage.vector_store import MilvusVectorStore


class WritePath:
    def __init__(
        self,
        config: InterestModelConfig,
        preparation: Catalogue,
        user_ids: UserIdScheme,
        store: MilvusVectorStore,
        logs: LogAccess,
        profiles: Profiles,
        popularity: Popularity,
        impressions: Impressions,
        interest_mirror: InterestMirror,
    ) -> None:
        self.config = config
        self.preparation = preparation  # user ids as stored, items known, vectors
        self.user_ids = user_ids
        self.store = store
        self.logs = logs
        self.profiles = profiles
        self.popularity = popularity
        self.impressions = impressions
        self.interest_mirror = interest_mirror

    async def ingest_events(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> list[Ack]:
        """Record and apply a validated batch atomically; unknown items reject the whole batch.

        `field_prefix`/`indexed` name the request field in errors ("events[3]" or "event")."""
        prepared = await self.preparation.prepare(events, field_prefix, indexed)
        events = prepared.events
        # event ids are unique per user, so the users' locks also keep two batches from writing
        # the same event at once
        async with self.profiles.writers.hold(le.event.user_id for le in events):
            acks, working = await self._apply_and_record(events, prepared.vectors, prepared.texts)
            versions = {uid: p.version for uid, p in working.items()}
            for _, uid, _ in acks:  # users with only duplicates in this batch
                if uid not in versions:
                    current = await self.profiles.load(uid, writer=True)
                    versions[uid] = current.version if current else 0
        return [Ack(eid, dup, versions[uid]) for eid, uid, dup in acks]

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]:
        """Record a feedback event (item_id and impression_id set) and say how its impression id
        matched the lists this server issued. One that names another user's list is refused whole
        (InvalidArgumentError on event.impression_id); an unknown one is recorded all the same."""
        matched = match_feedback(self.impressions, self.user_ids, feedback)
        (ack,) = await self.ingest_events([feedback], "event", indexed=False)
        return ack, matched

    async def delete_user(self, user_id: str) -> tuple[int, bool]:
        """Forget the user everywhere: events, profile and its snapshot, their share of the item
        popularity, the Milvus interest rows; open WatchProfile streams end. Returns (events
        deleted, profile existed)."""
        stored_id = self.user_ids.stored_id(user_id)
        async with self.profiles.writers.hold([stored_id]):
            deleted = await self.logs.write(EventLog.delete_user, stored_id)
            self.profiles.forget(stored_id)
            self.popularity.remove(deleted.positives)
            await self.interest_mirror.forget(stored_id)
            await self.store.delete_user(stored_id)
        return deleted.events, deleted.profile_existed

    async def _apply_and_record(
        self, events: Sequence[LoggedEvent], vectors: Sequence[Vector], texts: Sequence[str]
    ) -> tuple[list[tuple[str, str, bool]], dict[str, UserProfile]]:
        """Apply new events to copies of their profiles, then record events and profiles in one
        transaction; only then do the copies replace the cached profiles (all or nothing).
        Caller holds the users' writer locks. Returns (event_id, user_id, duplicate) per event."""
        already = await self.logs.write(
            EventLog.existing_events, [(le.event.user_id, le.event.event_id) for le in events]
        )
        acks: list[tuple[str, str, bool]] = []
        fresh: list[int] = []  # positions of the events not recorded before
        for i, le in enumerate(events):
            e = le.event
            duplicate = (e.user_id, e.event_id) in already
            acks.append((e.event_id, e.user_id, duplicate))
            if not duplicate:
                already.add((e.user_id, e.event_id))
                fresh.append(i)
        if not fresh:
            return acks, {}
        by_user: dict[str, list[int]] = {}
        for i in fresh:
            by_user.setdefault(events[i].event.user_id, []).append(i)
        matrix = np.stack([np.asarray(v, dtype=np.float64) for v in vectors])
        probs = self.profiles.topics.assign(matrix)
        working: dict[str, UserProfile] = {}
        now = time.time()
        for user_id, rows in by_user.items():
            current = await self.profiles.load(user_id, writer=True)
            profile = current.copy() if current else self.profiles.new(user_id)
            with tracer.start_as_current_span("profile.apply", attributes={"events": len(rows)}):
                profile.apply_many(  # the decayed update of every layer
                    [events[i].event for i in rows],
                    matrix[rows],
                    probs[rows],
                    [texts[i] for i in rows],
                    self.config,
                    now,
                )
            working[user_id] = profile
        snapshots = [(p.user_id, p.version, p.to_bytes()) for p in working.values()]
        with tracer.start_as_current_span("event_log.append", attributes={"events": len(fresh)}):
            added = await self.logs.write(EventLog.append, [events[i] for i in fresh], snapshots, now)
        self.popularity.add(added)
        self.profiles.committed(list(working.values()))
        self.interest_mirror.mark(working.values())
        return acks, working


def match_feedback(impressions: Impressions, user_ids: UserIdScheme, feedback: LoggedEvent) -> Matched:
    """How a feedback event's impression id matches the lists issued here; one that names another
    user's list is refused whole (InvalidArgumentError on event.impression_id)."""
    event = feedback.event
    try:
        return impressions.match(event.impression_id, user_ids.stored_id(event.user_id), event.item_id)
    except OtherUsersImpression:
        raise InvalidArgumentError(
            [FieldViolation("event.impression_id", "names a recommendation list issued to another user")]
        ) from None
