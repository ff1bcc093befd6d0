"""The models learned from the event log (`driftwise.model.refit`: topics, co-occurrence,
transitions, the two-tower, the self-tuned ranking settings): restored at start from the last
full refit saved in the data directory (`driftwise.engine.saved_fit`), or refitted quickly with the
last tuned settings when there is none, then refitted periodically in a niced child process,
swapped in whole."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from driftwise.concurrency import WorkerProcess
from driftwise.engine import saved_fit
from driftwise.engine.log_access import LogAccess
from driftwise.engine.profile_memo import ProfileMemo
from driftwise.engine.profiles import Profiles
from driftwise.engine.types import LearnedState
from driftwise.model.config import RankingConfig, TuningConfig
from driftwise.model.events import Event
from driftwise.model.learned import Learned, signals_for
from driftwise.model.profile import UserProfile
from driftwise.model.refit import Refitted, refit
from driftwise.model.topics import TopicModel
from driftwise.model.tuning import Catalogue, TuningStatus
from driftwise.settings import Settings
from driftwise.storage.event_log import EventLog
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.refit_handoff import CatalogueFile, refit_from_file, remove_leftovers
from driftwise.storage.vector_store import MilvusVectorStore, StoredItem

log = logging.getLogger(__name__)


class LearnedModels:
    def __init__(
        self,
        settings: Settings,
        taxonomy: TopicModel,
        dimension: int,
        store: MilvusVectorStore,
        items: ItemCache,
        logs: LogAccess,
        profiles: Profiles,
    ) -> None:
        self.settings = settings
        self.taxonomy = taxonomy  # the zero-shot labels: topics of a small catalogue, names of learned ones
        self.dimension = dimension
        self.store = store
        self.items = items
        self.logs = logs
        self.profiles = profiles
        # learned from the whole event log, refitted in the background (refit)
        self.refitted: Refitted | None = None
        self._signals: ProfileMemo[Learned] = ProfileMemo(settings.limits.profiles_remembered)
        # refits run in a child process: the tuning's minute of Python would otherwise hold this
        # process's GIL, and requests would wait their turn for it; niced, it yields the CPU to them
        self._process = WorkerProcess(
            "driftwise-refit",
            # torch: here only
            preload=["driftwise.storage.refit_handoff", "driftwise.sequence.two_tower_training"],
            nice=10,
        )
        self.periodic_task: asyncio.Task[None] | None = None

    def start_periodic(self) -> None:
        remove_leftovers(self.settings.data_dir)  # before the first refit that writes one
        self.periodic_task = asyncio.create_task(self._refit_periodically())

    async def close(self) -> None:
        if self.periodic_task is not None:
            self.periodic_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.periodic_task
        self._process.close()

    @property
    def ranking(self) -> RankingConfig:
        """The ranking settings served: the configured ones, as the last refit tuned them."""
        return self.settings.ranking if self.refitted is None else self.refitted.ranking

    def signals(self, profile: UserProfile) -> Learned:
        """The signals learned from the log, for one profile: computed once per profile object and
        fit (the next Recommend of a user whose profile has not changed since reuses them)."""
        basis = (self.refitted, self.profiles.topics)
        if (known := self._signals.get(profile, basis)) is not None:
            return known
        fitted = None if self.refitted is None else self.refitted.fitted
        return self._signals.put(
            profile, signals_for(profile, fitted, self.profiles.topics, self.ranking), basis
        )

    @property
    def learned_state(self) -> LearnedState:
        if self.refitted is None:
            return LearnedState.NONE
        pending = self.refitted.tuning.status is TuningStatus.PENDING  # saved or quick fit, refit due
        return LearnedState.REFITTING if pending else LearnedState.CURRENT

    async def refit(self, reread_items: bool = True) -> bool:
        """Learn topics when due, tune the ranking settings on the log and fit item co-occurrence
        and topic transitions on it with them (`driftwise.model.refit`), if the log grew.

        Derived state like the profiles: rebuilt from the log, swapped in whole (readers never see
        a half-fitted model). The catalogue is read from the store for it; the items in the log
        are cached again from that read (`reread_items`), which keeps the ones people use fresh.
        Returns whether anything was refitted.
        """
        count = await self.logs.read(EventLog.event_count)
        pending = self.refitted is None or self.refitted.tuning.status is TuningStatus.PENDING
        if not pending and self.refitted is not None and count == self.refitted.events:
            return False
        settings = self.settings
        taxonomy = self.taxonomy if settings.interest.learned_topics else None
        await self._refit(settings.ranking, settings.tuning, taxonomy, reread_items)
        return True

    def _fit_key(self, topics: TopicModel) -> saved_fit.FitKey:
        return saved_fit.FitKey.of(self.settings, self.dimension, topics.fingerprint)

    async def restore(self) -> bool:
        """At start: serve the last full refit saved in the data directory, if it was fitted for
        what this server serves now (`saved_fit`); the first periodic refit catches up with the
        events logged since, in the background. Returns whether one was restored."""
        count = await self.logs.read(EventLog.event_count)
        path = self.settings.data_dir / saved_fit.FILE_NAME
        restored = await asyncio.to_thread(saved_fit.load, path, self._fit_key(self.profiles.topics), count)
        if restored is None:
            return False
        # the topics are the profiles' own (the key matched their fingerprint): share the object
        restored = dataclasses.replace(restored, topics=self.profiles.topics)
        if restored.events < count:  # events logged since: GetModelStatus says a refit is under way
            pending = dataclasses.replace(restored.tuning, status=TuningStatus.PENDING)
            restored = dataclasses.replace(restored, tuning=pending)
        self.refitted = restored
        gc.freeze()  # long-lived, acyclic (see _refit)
        log.info(
            "restored the saved fit: %d of %d events, %s", restored.events, count, restored.tuning.summary()
        )
        return True

    async def _save(self, refitted: Refitted) -> None:
        path = self.settings.data_dir / saved_fit.FILE_NAME
        try:
            await asyncio.to_thread(saved_fit.save, path, self._fit_key(refitted.topics), refitted)
        except Exception:  # only a head start for the next start
            log.exception("could not save the fit to %s", path)

    async def quick_refit(self) -> None:
        """At start: the learned signals fitted on the log with the ranking settings the last
        self-tuning chose (kept in the log), so the server is ready in seconds; the first periodic
        refit tunes again right after (`_refit_periodically`)."""
        ranking = self.settings.ranking
        if (chosen := await self.logs.read(EventLog.tuned_ranking)) is not None:
            ranking = ranking.model_validate({**ranking.model_dump(), **json.loads(chosen)})
        # the items in the log are all it fits on without topic learning, self-tuning or the
        # two-tower (a read of the whole catalogue waits for the next refit); read through the cache
        logged = await self.logs.read(EventLog.item_ids)
        items = await self.items.get_in_chunks(logged)
        untuned = self.settings.tuning.model_copy(update={"enabled": False})
        # no two-tower yet: training it takes its time budget, and the first refit trains one
        catalogue = catalogue_of(list(items.values()), self.dimension)
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
        count = await self.logs.read(EventLog.event_count)
        events_by_user = await self.logs.read(EventLog.item_events)
        if catalogue is None:
            catalogue = await self._catalogue(events_by_user if reread else None)
        topics = self.profiles.topics
        arguments = (
            events_by_user,
            count,
            topics,
            self.settings.interest,
            ranking,
            tuning,
            self.settings.candidates_per_layer_for,
            taxonomy,
            two_tower,
        )
        items = len(catalogue.item_ids)
        if two_tower:
            spilled = await asyncio.to_thread(CatalogueFile.write, catalogue, self.settings.data_dir)
            del catalogue  # the worker reads the vectors from the file: not held here meanwhile
            try:
                refitted = await self._process.run(refit_from_file, spilled, *arguments)
            finally:
                spilled.path.unlink(missing_ok=True)
        else:  # a quick one at start, before any request: no process to start first
            refitted = await asyncio.to_thread(refit, catalogue, *arguments)
        if refitted.topics.fingerprint == self.profiles.topics.fingerprint:
            refitted = dataclasses.replace(refitted, topics=self.profiles.topics)  # a copy came back
        if refitted.topics is not self.profiles.topics:
            await self.profiles.adopt_topics(refitted.topics)
        # served from the next start on (NO_GAIN records the defaults: an empty choice)
        if refitted.tuning.status in (TuningStatus.TUNED, TuningStatus.NO_GAIN):
            await self.logs.write(EventLog.record_tuned_ranking, json.dumps(refitted.tuning.chosen))
        self.refitted = refitted
        if two_tower:  # a full refit: what the next start serves at once (not the quick one)
            await self._save(refitted)
        log.info(
            "refitted on %d events, %d items in %.1f s; %s",
            count,
            items,
            refitted.seconds,
            refitted.tuning.summary(),
        )
        # The models and the refreshed item cache are long-lived: take them out of the cyclic
        # garbage collector's passes (a full pass over 100k cached items took 55 ms: a p99 spike).
        # They hold no reference cycles, so reference counting still frees what is replaced.
        gc.freeze()
        return refitted

    async def _catalogue(self, logged: Mapping[str, Sequence[Event]] | None) -> Catalogue:
        """Every item in the store with its unit vector; the `logged` ones go into the cache. Kept
        as ids, titles and one matrix per scanned batch, not as items: at a million items the
        items themselves held GBs more while the matrix was built."""
        in_log = {e.item_id for events in (logged or {}).values() for e in events}
        ids: list[str] = []
        titles: list[str] = []
        blocks: list[npt.NDArray[np.float32]] = []
        async for batch in self.store.scan_items():
            self.items.put(item for item in batch if item.item_id in in_log)
            if batch:
                ids += (item.item_id for item in batch)
                titles += (item.title for item in batch)
                blocks.append(np.stack([item.vector for item in batch]).astype(np.float32, copy=False))
        return gathered_catalogue(ids, titles, blocks, self.dimension)

    async def _refit_periodically(self) -> None:
        """Refit (self-tuning included) now, since the start only refitted quickly, then every
        `ranking.refit_seconds` if the log grew."""
        while True:
            try:
                await self.refit()
            except Exception:  # a failed refit keeps the previous models; the next one retries
                log.exception("refitting the learned models failed")
            await asyncio.sleep(self.settings.ranking.refit_seconds)


def catalogue_of(items: list[StoredItem], dimension: int) -> Catalogue:
    vectors = [np.stack([item.vector for item in items]).astype(np.float32, copy=False)] if items else []
    return gathered_catalogue([i.item_id for i in items], [i.title for i in items], vectors, dimension)


def gathered_catalogue(
    ids: list[str], titles: list[str], blocks: list[npt.NDArray[np.float32]], dimension: int
) -> Catalogue:
    """The catalogue sorted by item id (the same catalogue gives the same topics), with unit rows;
    `blocks` (emptied) are the vectors in the order of `ids`, in consecutive row blocks. Each is copied
    to its sorted rows and dropped, so the vectors are held at most twice on the way (a copy of
    all of them and a sorted one were three times: 4.5 GB at a million items)."""
    if not ids:
        return Catalogue((), np.zeros((0, dimension), dtype=np.float32), ())
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.intp)
    row_of = np.empty(len(ids), dtype=np.intp)
    row_of[order] = np.arange(len(ids))  # where each scanned item goes
    matrix = np.empty((len(ids), dimension), dtype=np.float32)
    start = 0
    blocks.reverse()  # popped from the end: the first block first
    while blocks:
        block = blocks.pop()
        matrix[row_of[start : start + len(block)]] = block
        start += len(block)
    matrix /= np.maximum(np.sqrt(np.einsum("ij,ij->i", matrix, matrix)), np.float32(1e-12))[:, np.newaxis]
    return Catalogue(tuple(ids[i] for i in order), matrix, tuple(titles[i] for i in order))
