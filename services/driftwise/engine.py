"""The Driftwise engine: what the three services do, free of gRPC.

It ties the interest model (driftwise.model) to the encoder (Triton), the vector store (Milvus)
and the event log (SQLite). Servicers validate and convert messages, then call one method here.

One writer per user: every profile update holds that user's lock (`_writers`), so a user's events
are applied in one place and never race, while different users are written concurrently
(docs/interest-model.md §6.2; on a cluster, one profile shard owns each user). Each change is
published to WatchProfile streams (`_watches`) and mirrored to Milvus behind the acknowledgement
(`InterestMirror`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import math
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from driftwise.concurrency import KeyedLocks, Watch, Watches, WorkerProcess
from driftwise.errors import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from driftwise.inference.coverage import TextCoverage
from driftwise.inference.encoder import EncoderUnavailableError, TextEncoder, TextRole
from driftwise.model.config import RankingConfig, TuningConfig
from driftwise.model.events import Event
from driftwise.model.impressions import Impressions, Matched, OtherUsersImpression
from driftwise.model.layers import Vector
from driftwise.model.learned import Learned, signals_for
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import Candidate, Ranked, rank_cold_start, rank_for_profile
from driftwise.model.refit import Refitted, refit
from driftwise.model.topics import TopicModel, normalize_rows, unit_rows32
from driftwise.model.tuning import Catalogue, TuningStatus
from driftwise.observability.tracing import tracer
from driftwise.privacy import UserIdScheme
from driftwise.settings import Settings
from driftwise.storage.event_log import EventLog, LoggedEvent
from driftwise.storage.interest_mirror import InterestMirror
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.serial import SerialWorker
from driftwise.storage.vector_store import (
    STRONG,
    UNKNOWN_TIME,
    InterestRow,
    ItemFilter,
    MilvusTls,
    MilvusVectorStore,
    StoredItem,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to upsert, as the API gave it."""

    item_id: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    category: str = ""
    create_time: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The text that is encoded: title, description and tags."""
        parts = [self.title, self.description, ", ".join(self.tags)]
        return ". ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Ack:
    event_id: str
    duplicate: bool
    profile_version: int


@dataclass(frozen=True, slots=True)
class RecommendQuery:
    user_id: str
    count: int = 10
    categories: tuple[str, ...] = ()
    created_after: float | None = None
    created_before: float | None = None
    exclude_item_ids: tuple[str, ...] = ()
    include_seen: bool = False
    diversity: float = 0.0
    as_of: float | None = None
    shown: tuple[str, ...] = ()  # items on earlier pages (page_token): excluded like exclude_item_ids


@dataclass(frozen=True, slots=True)
class Recommendations:
    ranked: list[Ranked]
    items: dict[str, StoredItem]
    recommendation_id: str
    profile_version: int
    cold_start: bool
    more: bool = False  # Recommend: whether more items pass the request (another page exists)


class Engine:
    def __init__(
        self,
        settings: Settings,
        encoder: TextEncoder,
        store: MilvusVectorStore,
        topics: TopicModel,
        user_ids: UserIdScheme | None = None,
        coverage: TextCoverage | None = None,
    ) -> None:
        self.settings = settings
        # every public method maps the caller's user ids through this before storing or looking up
        self.user_ids = user_ids or UserIdScheme()
        self.encoder = encoder
        # texts the model cannot represent (mostly unknown tokens) are logged and counted on their
        # way to the encoder; without one (open() always builds one), nothing is checked
        self.coverage = (
            coverage
            if coverage is not None
            else TextCoverage(settings.triton.model_name, None, settings.triton.unknown_share_threshold)
        )
        self.store = store
        self.taxonomy = topics  # the zero-shot labels: topics of a small catalogue, names of learned ones
        self.topic_model = topics
        self.items = ItemCache(store, settings.milvus.item_cache_size, settings.milvus.item_cache_ttl_seconds)
        self.log = EventLog(settings.data_dir / "events.sqlite")
        try:  # before anything is written: data of another scheme would split every user in two
            self.user_ids.check_scheme(self.log.user_id_scheme())
        except BaseException:
            self.log.close()
            raise
        self.log.record_user_id_scheme(self.user_ids.name)
        if (learned := self.log.learned_topics()) is not None:  # the topics the profiles were built with
            model = TopicModel.from_json(learned, settings.interest.assignment_temperature)
            if model.centroids.shape[1] == encoder.dimension:  # not if another encoder is configured now
                self.topic_model = model
        self._log_thread = SerialWorker("event-log")
        # a second connection for reads on its own thread: WAL lets them run beside a write, so
        # ranking never waits behind an ingest batch's fsync
        self._log_reads = EventLog(settings.data_dir / "events.sqlite")
        self._read_thread = SerialWorker("event-log-reads")
        self._writers = KeyedLocks()
        self._watches: Watches[UserProfile] = Watches()
        # the lists Recommend issued lately, for StreamFeedback to match its impression ids to
        self.impressions = Impressions(settings.limits.impressions_remembered)
        self.interest_mirror = InterestMirror(store, self._interest_rows)
        # LRU cache of the log's profile snapshots; entries are replaced, never mutated in place
        self._profiles: OrderedDict[str, UserProfile] = OrderedDict()
        self._cache_size = 10_000
        self._commits = 0  # writes to the log so far: readers cache a snapshot only if none raced it
        # positive events per item, in step with the log's item_stats (append returns what it
        # added): every Recommend scales its candidates' popularity by it, from memory
        self._popularity: Counter[str] = Counter()
        self._top_popularity = 0
        # learned from the whole event log, refitted in the background (refit_learned_models)
        self.refitted: Refitted | None = None
        # refits run in a child process: the tuning's minute of Python would otherwise hold this
        # process's GIL, and requests would wait their turn for it; niced, it yields the CPU to them
        self._refit_process = WorkerProcess(
            "driftwise-refit",
            preload=["driftwise.model.refit", "driftwise.sequence.two_tower_training"],  # torch: here only
            nice=10,
        )
        self._refit_task: asyncio.Task[None] | None = None
        self._rebuild_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, encoder: TextEncoder, user_ids: UserIdScheme | None = None
    ) -> Engine:
        """Open the stores and embed the topic labels (the zero-shot taxonomy) with the encoder.
        `user_ids`: how user ids are stored; by default from settings.privacy (reads the key)."""
        if user_ids is None:
            user_ids = UserIdScheme.from_settings(settings.privacy)
        labels = settings.interest.topics
        centroids = await _encode(encoder, list(labels), "query")
        coverage = await asyncio.to_thread(  # reads the model's vocabulary (up to ~2 s)
            TextCoverage.for_model, settings.triton.model_name, settings.triton.unknown_share_threshold
        )
        store = MilvusVectorStore(
            settings.milvus_uri,
            encoder.dimension,
            token=settings.milvus.token,
            index_type=settings.milvus.index_type,
            timeout_seconds=settings.milvus.request_timeout_seconds,
            connect_timeout_seconds=settings.milvus.connect_timeout_seconds,
            tls=MilvusTls.from_settings(settings.milvus),
        )
        await store.open()
        topics = TopicModel(labels, centroids, settings.interest.assignment_temperature)
        try:
            engine = cls(settings, encoder, store, topics, user_ids, coverage)
        except BaseException:
            await store.close()
            raise
        engine._count_popularity(await engine._read_thread.run(engine._log_reads.item_counts))
        if settings.milvus.warm_item_cache:
            await engine._warm_item_cache()
        await engine._quick_refit()
        engine.interest_mirror.start()
        engine._refit_task = asyncio.create_task(engine._refit_periodically())
        rebuilt_for = await engine._read_thread.run(engine._log_reads.profiles_topics)
        if rebuilt_for != engine.topic_model.fingerprint:  # a crash during a rebuild, another encoder
            engine._rebuild_stale_profiles()
        return engine

    async def _warm_item_cache(self) -> None:
        """Read the catalogue into the item cache before serving: done later, alongside requests,
        it held up their searches (one store thread) and every cold request read hundreds of
        items itself (p99 x4 at 100k items, bench/serving.py)."""
        started = time.perf_counter()
        try:
            cached = await self.items.warm()
        except Exception:  # only a head start: requests read what they miss
            log.exception("could not warm the item cache")
            return
        gc.freeze()  # long-lived, acyclic: out of the collector's way (see refit_learned_models)
        log.info("item cache warmed: %d items in %.1f s", cached, time.perf_counter() - started)

    async def close(self) -> None:
        for task in (self._refit_task, self._rebuild_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refit_process.close()
        await self.interest_mirror.close()
        await self.store.close()
        await self._read_thread.run(self._log_reads.close)
        self._read_thread.shutdown()
        await self._log_thread.run(self.log.close)
        self._log_thread.shutdown()

    async def _encode(
        self, texts: Sequence[str], role: TextRole, *, check_coverage: bool = True
    ) -> npt.NDArray[np.float32]:
        """Encode texts that arrive (`check_coverage`: logged and counted if the model cannot
        represent them; they are encoded all the same)."""
        if check_coverage:
            self.coverage.check(texts, role)
        return await _encode(self.encoder, texts, role)

    # -- items -----------------------------------------------------------------------------------

    async def upsert_items(self, items: Sequence[NewItem]) -> int:
        vectors = await self._encode([it.text() for it in items], "passage")
        stored = [
            StoredItem(
                it.item_id,
                it.title,
                it.category,
                UNKNOWN_TIME if it.create_time is None else int(it.create_time),
                vectors[i],
                it.attributes,
            )
            for i, it in enumerate(items)
        ]
        await self.store.upsert_items(stored)
        self.items.put(stored)
        return len(items)

    async def delete_items(self, item_ids: Sequence[str]) -> int:
        self.items.drop(item_ids)
        return await self.store.delete_items(item_ids)

    # -- events ----------------------------------------------------------------------------------

    async def ingest_events(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> list[Ack]:
        """Record and apply a validated batch atomically; unknown items reject the whole batch.

        `field_prefix`/`indexed` name the request field in errors ("events[3]" or "event")."""
        if self.user_ids.pseudonymises:
            events = [self._stored_user(le) for le in events]
        referenced = [le.event.item_id for le in events if le.event.item_id]
        items = await self.items.get(referenced)
        if not_found := [i for i in referenced if i not in items]:  # upserted a moment ago elsewhere?
            items.update(await self.store.get_items(not_found, consistency=STRONG))
        unknown = [
            FieldViolation(
                f"{field_prefix}[{i}].item_id" if indexed else f"{field_prefix}.item_id",
                f"unknown item {le.event.item_id!r}",
            )
            for i, le in enumerate(events)
            if le.event.item_id and le.event.item_id not in items
        ]
        if unknown:
            raise InvalidArgumentError(unknown)
        vectors, texts = await self._event_vectors([le.event for le in events], items)

        # event ids are unique per user, so the users' locks also keep two batches from writing
        # the same event at once
        async with self._writers.hold(le.event.user_id for le in events):
            acks, working = await self._apply_and_record(events, vectors, texts)
            versions = {uid: p.version for uid, p in working.items()}
            for _, uid, _ in acks:  # users with only duplicates in this batch
                if uid not in versions:
                    current = await self._load_profile(uid, writer=True)
                    versions[uid] = current.version if current else 0
        return [Ack(eid, dup, versions[uid]) for eid, uid, dup in acks]

    async def record_feedback(self, feedback: LoggedEvent) -> tuple[Ack, Matched]:
        """Record a feedback event (item_id and impression_id set) and say how its impression id
        matched the lists this server issued. One that names another user's list is refused whole
        (InvalidArgumentError on event.impression_id); an unknown one is recorded all the same."""
        event = feedback.event
        try:
            matched = self.impressions.match(
                event.impression_id, self.user_ids.stored_id(event.user_id), event.item_id
            )
        except OtherUsersImpression:
            raise InvalidArgumentError(
                [FieldViolation("event.impression_id", "names a recommendation list issued to another user")]
            ) from None
        (ack,) = await self.ingest_events([feedback], "event", indexed=False)
        return ack, matched

    def _stored_user(self, logged: LoggedEvent) -> LoggedEvent:
        stored_id = self.user_ids.stored_id(logged.event.user_id)
        return dataclasses.replace(logged, event=dataclasses.replace(logged.event, user_id=stored_id))

    async def _apply_and_record(
        self, events: Sequence[LoggedEvent], vectors: Sequence[Vector], texts: Sequence[str]
    ) -> tuple[list[tuple[str, str, bool]], dict[str, UserProfile]]:
        """Apply new events to copies of their profiles, then record events and profiles in one
        transaction; only then do the copies replace the cached profiles (all or nothing).
        Caller holds the users' writer locks. Returns (event_id, user_id, duplicate) per event."""
        already = await self._log_thread.run(
            self.log.existing_events, [(le.event.user_id, le.event.event_id) for le in events]
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
        probs = self.topic_model.assign(matrix)
        working: dict[str, UserProfile] = {}
        now = time.time()
        for user_id, rows in by_user.items():
            current = await self._load_profile(user_id, writer=True)
            profile = current.copy() if current else self._new_profile(user_id)
            with tracer.start_as_current_span("profile.apply", attributes={"events": len(rows)}):
                profile.apply_many(  # the decayed update of every layer
                    [events[i].event for i in rows],
                    matrix[rows],
                    probs[rows],
                    [texts[i] for i in rows],
                    self.settings.interest,
                    now,
                )
            working[user_id] = profile
        snapshots = [(p.user_id, p.version, p.to_bytes()) for p in working.values()]
        with tracer.start_as_current_span("event_log.append", attributes={"events": len(fresh)}):
            added = await self._log_thread.run(self.log.append, [events[i] for i in fresh], snapshots, now)
        self._count_popularity(added)
        self._commits += 1
        for profile in working.values():
            self._cache(profile)
            self._watches.publish(profile.user_id, profile)
        self.interest_mirror.mark(working.values())
        return acks, working

    async def _event_vectors(
        self, events: Sequence[Event], items: dict[str, StoredItem], *, check_coverage: bool = True
    ) -> tuple[list[Vector], list[str]]:
        """Each event's unit vector and text: the stored item vector (not re-encoded), the
        encoded free text, or the normalised sum of both."""
        free_text = [e.text for e in events if e.text]
        encoded = (
            iter(await self._encode(free_text, "query", check_coverage=check_coverage))
            if free_text
            else iter(())
        )
        vectors: list[Vector] = []
        texts: list[str] = []
        for e in events:
            parts = []
            if e.item_id:
                parts.append(items[e.item_id].vector.astype(np.float64))
            if e.text:
                parts.append(np.asarray(next(encoded), dtype=np.float64))
            # an item event with text of its own: the normalised sum (a 1 x d row, then the row)
            vectors.append(
                normalize_rows(np.sum(parts, axis=0)[np.newaxis])[0] if len(parts) > 1 else parts[0]
            )
            texts.append(" / ".join(t for t in (items[e.item_id].title if e.item_id else "", e.text) if t))
        return vectors, texts

    def _interest_rows(self, profile: UserProfile) -> list[InterestRow]:
        """The profile's layer directions as `user_interests` rows."""
        return [
            InterestRow(
                profile.user_id, layer, direction.astype(np.float32), state.mass, int(profile.updated_at)
            )
            for layer, state in profile.layers.items()
            if (direction := state.direction(self.ranking.negative_max_push)) is not None
        ]

    def _new_profile(self, user_id: str) -> UserProfile:
        topics = self.topic_model
        return UserProfile.new(
            user_id, self.settings.interest, self.encoder.dimension, topics.size, topics.fingerprint
        )

    def _cache(self, profile: UserProfile) -> None:
        self._profiles[profile.user_id] = profile
        self._profiles.move_to_end(profile.user_id)
        while len(self._profiles) > self._cache_size:
            self._profiles.popitem(last=False)

    async def _load_profile(self, user_id: str, *, writer: bool = False) -> UserProfile | None:
        """The user's newest profile, from the cache or the log, under the current topics.

        A `writer` holds the user's lock, so what it reads is the newest state. A reader's snapshot
        may be overtaken by a write or a deletion while it is read: it is cached only if no write
        at all was committed meanwhile (it must never replace what a writer cached). A profile
        built with other topics (learned again since) is rebuilt from the log first."""
        topics = self.topic_model.fingerprint
        cached = self._profiles.get(user_id)
        if cached is not None and cached.topics == topics:
            return cached
        commits = self._commits
        profile = cached
        if profile is None:
            data = await self._read_thread.run(self._log_reads.load_profile, user_id)
            if data is None:
                return None
            profile = UserProfile.from_bytes(data)
        if profile.topics != topics:
            profile = await self._replayed(profile)
        if writer or (commits == self._commits and self._profiles.get(user_id) is cached):
            self._cache(profile)
        return profile

    async def _replayed(self, stale: UserProfile) -> UserProfile:
        """`stale` rebuilt from the log under the current topics, its version kept (readers
        of WatchProfile and acks count versions)."""
        profile = await self._replay(stale.user_id) or stale
        profile.version, profile.event_count, profile.updated_at = (
            stale.version,
            stale.event_count,
            stale.updated_at,
        )
        return profile

    async def _replay(self, stored_id: str) -> UserProfile | None:
        """A new profile from the user's events in the log (the source of truth); None without."""
        logged = await self._read_thread.run(self._log_reads.events_for_user, stored_id)
        if not logged:
            return None
        events = [le.event for le in logged]
        items = await self.items.get([e.item_id for e in events if e.item_id])
        replayable = [e for e in events if not e.item_id or e.item_id in items]
        if len(replayable) < len(events):
            log.warning("user %s: %d events refer to deleted items", stored_id, len(events) - len(replayable))
        # replayed texts were checked (and counted) when they arrived
        vectors, texts = await self._event_vectors(replayable, items, check_coverage=False)
        topics = self.topic_model
        profile = self._new_profile(stored_id)
        if replayable:
            matrix = np.stack(vectors)
            profile.apply_many(replayable, matrix, topics.assign(matrix), texts, self.settings.interest, 0.0)
        profile.topics = topics.fingerprint
        return profile

    # -- profiles --------------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> UserProfile:
        profile = await self._load_profile(self.user_ids.stored_id(user_id))
        if profile is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        return profile

    async def rebuild_profile(self, user_id: str) -> UserProfile:
        """Replay the user's events from the log (the source of truth) into a new profile."""
        profile = await self._replay(self.user_ids.stored_id(user_id))
        if profile is None:
            raise NotFoundError(f"user {user_id!r} has no events")
        return profile

    async def delete_user(self, user_id: str) -> tuple[int, bool]:
        """Forget the user everywhere: events, profile and its snapshot, their share of the item
        popularity, the Milvus interest rows; open WatchProfile streams end. Returns (events
        deleted, profile existed)."""
        stored_id = self.user_ids.stored_id(user_id)
        async with self._writers.hold([stored_id]):
            deleted = await self._log_thread.run(self.log.delete_user, stored_id)
            self._commits += 1
            self._uncount_popularity(deleted.positives)
            await self.interest_mirror.forget(stored_id)
            await self.store.delete_user(stored_id)
            self._profiles.pop(stored_id, None)
            self._watches.close(stored_id)
        return deleted.events, deleted.profile_existed

    @contextlib.asynccontextmanager
    async def watch_profile(
        self, user_id: str
    ) -> AsyncIterator[tuple[UserProfile | None, Watch[UserProfile]]]:
        """The user's profile now (None without events) and a watch on its later changes.

        The watch is registered before the profile is read, so no change is missed; a change may
        arrive both ways (readers skip versions they have sent)."""
        stored_id = self.user_ids.stored_id(user_id)
        with self._watches.watch(stored_id) as watch:
            async with self._writers.hold([stored_id]):
                current = await self._load_profile(stored_id)
            yield current, watch

    # -- models learned from the event log -------------------------------------------------------

    async def refit_learned_models(self, reread_items: bool = True) -> bool:
        """Learn topics when due, tune the ranking settings on the log and fit item co-occurrence
        and topic transitions on it with them (`driftwise.model.refit`), if the log grew.

        Derived state like the profiles: rebuilt from the log, swapped in whole (readers never see
        a half-fitted model). The catalogue is read from the store for it; the items in the log
        are cached again from that read (`reread_items`), which keeps the ones people use fresh.
        Returns whether anything was refitted.
        """
        count = await self._read_thread.run(self._log_reads.event_count)
        pending = self.refitted is None or self.refitted.tuning.status is TuningStatus.PENDING
        if not pending and self.refitted is not None and count == self.refitted.events:
            return False
        settings = self.settings
        taxonomy = self.taxonomy if settings.interest.learned_topics else None
        await self._refit(settings.ranking, settings.tuning, taxonomy, reread_items)
        return True

    async def _quick_refit(self) -> None:
        """At start: the learned signals fitted on the log with the ranking settings the last
        self-tuning chose (kept in the log), so the server is ready in seconds; the first periodic
        refit tunes again right after (`_refit_periodically`)."""
        ranking = self.settings.ranking
        if (chosen := await self._read_thread.run(self._log_reads.tuned_ranking)) is not None:
            ranking = ranking.model_validate({**ranking.model_dump(), **json.loads(chosen)})
        # the catalogue from the cache the warm-up just filled (a full read waits for the next refit)
        cached = self.items.cached() if self.settings.milvus.warm_item_cache else None
        catalogue = None if not cached else _catalogue_of(cached, self.encoder.dimension)
        untuned = self.settings.tuning.model_copy(update={"enabled": False})
        # no two-tower yet: training it takes its time budget, and the first refit trains one
        await self._refit(ranking, untuned, None, catalogue=catalogue, two_tower=False)
        assert self.refitted is not None
        pending = dataclasses.replace(self.refitted.tuning, status=TuningStatus.PENDING)
        self.refitted = dataclasses.replace(self.refitted, tuning=pending)

    async def refit_with(self, ranking: RankingConfig) -> Refitted:
        """Serve with these ranking settings, refitted on the log as they are (no self-tuning, the
        topics kept): what `driftwise eval` compares the tuned settings with."""
        return await self._refit(ranking, self.settings.tuning.model_copy(update={"enabled": False}), None)

    async def _refit(
        self,
        ranking: RankingConfig,
        tuning: TuningConfig,
        taxonomy: TopicModel | None,
        reread: bool = False,
        catalogue: Catalogue | None = None,
        two_tower: bool = True,
    ) -> Refitted:
        count = await self._read_thread.run(self._log_reads.event_count)
        events_by_user = await self._read_thread.run(self._log_reads.item_events)
        if catalogue is None:
            catalogue = await self._catalogue(events_by_user if reread else None)
        arguments = (
            catalogue,
            events_by_user,
            count,
            self.topic_model,
            self.settings.interest,
            ranking,
            tuning,
            self.settings.candidates_per_layer_for,
            taxonomy,
            two_tower,
        )
        if two_tower:
            refitted = await self._refit_process.run(refit, *arguments)
        else:  # a quick one at start, before any request: no process to start first
            refitted = await asyncio.to_thread(refit, *arguments)
        if refitted.topics.fingerprint == self.topic_model.fingerprint:
            refitted = dataclasses.replace(refitted, topics=self.topic_model)  # a copy came back
        if refitted.topics is not self.topic_model:
            await self._adopt_topics(refitted.topics)
        # served from the next start on (NO_GAIN records the defaults: an empty choice)
        if refitted.tuning.status in (TuningStatus.TUNED, TuningStatus.NO_GAIN):
            await self._log_thread.run(self.log.record_tuned_ranking, json.dumps(refitted.tuning.chosen))
        self.refitted = refitted
        log.info(
            "refitted on %d events, %d items in %.1f s; %s",
            count,
            len(catalogue.item_ids),
            refitted.seconds,
            refitted.tuning.summary(),
        )
        # The models and the refreshed item cache are long-lived: take them out of the cyclic
        # garbage collector's passes (a full pass over 100k cached items took 55 ms: a p99 spike).
        # They hold no reference cycles, so reference counting still frees what is replaced.
        gc.freeze()
        return refitted

    async def _adopt_topics(self, topics: TopicModel) -> None:
        """Serve with new topics: recorded first (the profiles about to be rebuilt depend on
        them), then swapped in; every profile is rebuilt in the background, and any profile read
        before that is rebuilt as it is read (`_load_profile`)."""
        await self._log_thread.run(self.log.record_learned_topics, topics.to_json())
        self.topic_model = topics
        log.info("topics learned from %d items: %s", topics.items, "; ".join(topics.labels))
        self._rebuild_stale_profiles()

    def _rebuild_stale_profiles(self) -> None:
        if self._rebuild_task is None or self._rebuild_task.done():
            self._rebuild_task = asyncio.create_task(self._rebuild_profiles())

    async def _rebuild_profiles(self, batch: int = 100) -> None:
        """Rebuild and store every profile whose topic affinities were computed with other topics,
        `batch` users at a time under their writer locks (their writes wait, nobody else's)."""
        started, rebuilt, topics = time.perf_counter(), 0, self.topic_model
        users = await self._read_thread.run(self._log_reads.user_ids)
        for i in range(0, len(users), batch):
            async with self._writers.hold(users[i : i + batch]):
                fresh = []
                for user_id in users[i : i + batch]:
                    data = await self._read_thread.run(self._log_reads.load_profile, user_id)
                    stored = None if data is None else UserProfile.from_bytes(data)
                    if stored is None or stored.topics == topics.fingerprint:
                        continue
                    # one rebuilt on read meanwhile is stored as it is; the snapshot is not read again
                    profile = self._profiles.get(user_id)
                    if profile is None or profile.topics != self.topic_model.fingerprint:
                        profile = await self._replayed(stored)
                        self._cache(profile)
                    fresh.append(profile)
                snapshots = [(p.user_id, p.version, p.to_bytes()) for p in fresh]
                await self._log_thread.run(self.log.save_profiles, snapshots)
                self._commits += 1
                for profile in fresh:
                    self._watches.publish(profile.user_id, profile)
                rebuilt += len(fresh)
            if topics is not self.topic_model:  # newer topics came meanwhile: their rebuild follows
                break
        if topics is not self.topic_model:
            self._rebuild_task = asyncio.create_task(self._rebuild_profiles())
            return
        await self._log_thread.run(self.log.record_profiles_topics, topics.fingerprint)
        log.info("%d profiles rebuilt for new topics in %.1f s", rebuilt, time.perf_counter() - started)

    async def _catalogue(self, logged: Mapping[str, Sequence[Event]] | None) -> Catalogue:
        """Every item in the store with its unit vector; the `logged` ones go into the cache."""
        in_log = {e.item_id for events in (logged or {}).values() for e in events}
        items: list[StoredItem] = []
        async for batch in self.store.scan_items():
            self.items.put(item for item in batch if item.item_id in in_log)
            items.extend(batch)
        return _catalogue_of(items, self.encoder.dimension)

    @property
    def ranking(self) -> RankingConfig:
        """The ranking settings served: the configured ones, as the last refit tuned them."""
        return self.settings.ranking if self.refitted is None else self.refitted.ranking

    async def _refit_periodically(self) -> None:
        """Refit (self-tuning included) now, since the start only refitted quickly, then every
        `ranking.refit_seconds` if the log grew."""
        while True:
            try:
                await self.refit_learned_models()
            except Exception:  # a failed refit keeps the previous models; the next one retries
                log.exception("refitting the learned models failed")
            await asyncio.sleep(self.settings.ranking.refit_seconds)

    def _signals(self, profile: UserProfile) -> Learned:
        """The signals learned from the log, for one profile (computed once per request)."""
        fitted = None if self.refitted is None else self.refitted.fitted
        return signals_for(profile, fitted, self.topic_model, self.ranking)

    # -- ranking ---------------------------------------------------------------------------------

    async def recommend(self, query: RecommendQuery) -> Recommendations:
        stored_id = self.user_ids.stored_id(query.user_id)
        profile = await self._load_profile(stored_id)
        at = query.as_of if query.as_of is not None else time.time()
        exclude = {*query.exclude_item_ids, *query.shown}
        if not query.include_seen and profile is not None:
            exclude.update(await self._read_thread.run(self._log_reads.seen_item_ids, stored_id))
        allowed = ItemFilter(
            categories=query.categories,
            created_after=_opt_int(query.created_after),
            created_before=_opt_int(query.created_before),
            exclude_ids=frozenset(exclude),
        )
        directions = [] if profile is None else self._directions(profile)
        wanted = query.count + 1  # one more than asked for tells whether another page exists
        if profile is not None and directions:
            learned = self._signals(profile)
            queries = np.stack(directions)

            async def personal(limit: int) -> tuple[list[Ranked], dict[str, StoredItem], bool]:
                with tracer.start_as_current_span("ranking.retrieve", attributes={"limit": limit}) as span:
                    # one Milvus search for all layers, ids only; the items come from the cache
                    hits = await self.store.search_ids(queries, limit, allowed.expression())
                    # with what usually follows the recent events, within the same filter
                    ids = [item_id for layer_hits in hits for item_id, _ in layer_hits]
                    found = await self.items.get([*ids, *learned.followers])
                    items = {i: item for i, item in found.items() if allowed.allows(item)}
                    span.set_attribute("candidates", len(items))
                ranked = await self._rank_personal(profile, items, at, wanted, query.diversity, learned)
                return ranked, items, any(len(layer_hits) >= limit for layer_hits in hits)

            first = max(self.settings.candidates_per_layer, query.count)
            ranked, items = await _searching_deeper(personal, first, wanted)
            return self._recommendations(query, stored_id, ranked, items, profile.version, cold_start=False)

        async def cold_start(per_topic: int) -> tuple[list[Ranked], dict[str, StoredItem], bool]:
            items, full = await self._cold_start_pool(allowed, per_topic)
            ranked = rank_cold_start(
                self._candidates(items), self.topic_model, now=at, count=wanted, config=self.ranking
            )
            return ranked, items, full

        ranked, items = await _searching_deeper(cold_start, max(2, query.count // 2), wanted)
        version = 0 if profile is None else profile.version
        return self._recommendations(query, stored_id, ranked, items, version, cold_start=True)

    def _recommendations(
        self,
        query: RecommendQuery,
        stored_id: str,
        ranked: list[Ranked],
        items: dict[str, StoredItem],
        profile_version: int,
        *,
        cold_start: bool,
    ) -> Recommendations:
        """The first `query.count` of `ranked` (ranked one further to tell whether more exist),
        recorded as an impression of the user (`stored_id`)."""
        shown = ranked[: query.count]
        recommendation_id = uuid.uuid4().hex
        self.impressions.record(recommendation_id, stored_id, [r.item_id for r in shown])
        return Recommendations(
            shown,
            items,
            recommendation_id,
            profile_version,
            cold_start=cold_start,
            more=len(ranked) > len(shown),
        )

    async def rank(
        self, user_id: str, item_ids: Sequence[str], as_of: float | None = None
    ) -> Recommendations:
        """Score the caller's candidates (known items) for the user, best first; all are returned."""
        stored = await self.items.get(item_ids)
        unknown = [
            FieldViolation(f"candidate_item_ids[{i}]", f"unknown item {item_id!r}")
            for i, item_id in enumerate(item_ids)
            if item_id not in stored
        ]
        if unknown:
            raise InvalidArgumentError(unknown)
        items = {item_id: stored[item_id] for item_id in item_ids}  # the caller's order, no repeats
        profile = await self._load_profile(self.user_ids.stored_id(user_id))
        at = as_of if as_of is not None else time.time()
        if profile is not None and self._directions(profile):
            learned = self._signals(profile)
            ranked = await self._rank_personal(
                profile, items, at, len(items), 0.0, learned, keep_rejected=True
            )
            return Recommendations(ranked, items, uuid.uuid4().hex, profile.version, cold_start=False)
        candidates = self._candidates(items)
        ranked = rank_cold_start(candidates, self.topic_model, now=at, count=len(items), config=self.ranking)
        return Recommendations(
            ranked, items, uuid.uuid4().hex, 0 if profile is None else profile.version, cold_start=True
        )

    def _directions(self, profile: UserProfile) -> list[Vector]:
        max_push = self.ranking.negative_max_push
        return [d for s in profile.layers.values() if (d := s.direction(max_push)) is not None]

    async def _rank_personal(
        self,
        profile: UserProfile,
        items: dict[str, StoredItem],
        at: float,
        count: int,
        diversity: float,
        learned: Learned,
        keep_rejected: bool = False,
    ) -> list[Ranked]:
        candidates = self._candidates(items)
        return rank_for_profile(
            profile,
            candidates,
            self.topic_model,
            at=at,
            count=count,
            diversity=diversity,
            config=self.ranking,
            topic_temperature=self.settings.interest.topic_temperature,
            signals=learned.for_candidates([c.item_id for c in candidates], at),
            keep_rejected=keep_rejected,
        )

    async def _cold_start_pool(
        self, allowed: ItemFilter, per_topic: int
    ) -> tuple[dict[str, StoredItem], bool]:
        """Candidates for a user without a profile: `per_topic` items near each topic (variety),
        plus the 10 x `per_topic` most popular items, that pass the request's filter; and whether
        a topic's search came back full (a deeper one may find more)."""
        hits = await self.store.search_ids(self.topic_model.centroids, per_topic, allowed.expression())
        popular = await self._read_thread.run(self._log_reads.popular_items, per_topic * 10)
        ids = [item_id for topic_hits in hits for item_id, _ in topic_hits]
        found = await self.items.get([*ids, *(item_id for item_id, _ in popular)])
        # the popular items only add to the pool: whether a deeper look may find more is the
        # filtered searches' to say (one that came back short has every item the filter allows)
        full = any(len(topic_hits) >= per_topic for topic_hits in hits)
        return {i: item for i, item in found.items() if allowed.allows(item)}, full

    def _count_popularity(self, added: Counter[str]) -> None:
        self._popularity.update(added)
        self._top_popularity = max(self._top_popularity, *(self._popularity[i] for i in added), 0)

    @property
    def popularity(self) -> Mapping[str, int]:
        """Positive events per item, as every Recommend reads it (in step with the log)."""
        return self._popularity

    def _uncount_popularity(self, removed: Counter[str]) -> None:
        if removed:
            self._popularity.subtract(removed)
            self._popularity = +self._popularity  # drops the items at zero
            self._top_popularity = max(self._popularity.values(), default=0)

    def _candidates(self, items: dict[str, StoredItem]) -> list[Candidate]:
        popularity, top = self._popularity, self._top_popularity
        scale = math.log1p(top) if top > 0 else 1.0
        return [
            Candidate(
                item_id,
                item.vector,  # float32: ranking stacks and converts all candidates at once
                math.log1p(popularity.get(item_id, 0)) / scale,
                None if item.create_time == UNKNOWN_TIME else float(item.create_time),
            )
            for item_id, item in items.items()
        ]


# Milvus answers at most this many hits per search (its topk limit)
MAX_SEARCH_LIMIT = 16_384

Attempt = Callable[[int], Awaitable[tuple[list[Ranked], dict[str, StoredItem], bool]]]


async def _searching_deeper(
    attempt: Attempt, limit: int, wanted: int
) -> tuple[list[Ranked], dict[str, StoredItem]]:
    """Rank what a search of `limit` hits finds; while fewer than `wanted` items could be ranked
    (a filter, seen or rejected items thinned them out) and a search came back full, so the store
    may hold more, search again four times as deep."""
    while True:
        ranked, items, full = await attempt(limit)
        if len(ranked) >= wanted or not full or limit >= MAX_SEARCH_LIMIT:
            return ranked, items
        limit = min(limit * 4, MAX_SEARCH_LIMIT)


async def _encode(encoder: TextEncoder, texts: Sequence[str], role: TextRole) -> npt.NDArray[np.float32]:
    """Item texts are passages; what users type (searches, comments) and topic labels are queries."""
    try:
        return await encoder.encode(texts, role)
    except EncoderUnavailableError as exc:
        raise UnavailableError(f"text encoder unavailable: {exc}") from exc


def _catalogue_of(items: list[StoredItem], dimension: int) -> Catalogue:
    items = sorted(items, key=lambda item: item.item_id)  # the same catalogue gives the same topics
    matrix = (
        unit_rows32(np.stack([item.vector for item in items]))
        if items
        else np.zeros((0, dimension), dtype=np.float32)
    )
    return Catalogue(tuple(i.item_id for i in items), matrix, tuple(i.title for i in items))


def _opt_int(value: float | None) -> int | None:
    return None if value is None else int(value)
