"""Mirror of the users' layer directions in Milvus `user_interests`, written behind the ack.

The rows are derived data (the event log is the source of truth; they are rebuilt on replay), so
an event need not wait for them: changed profiles are collected and written in one upsert per
`interval_seconds`, the newest state of each user winning. This takes a Milvus write off every
event's acknowledgement path and turns many small writes into few large ones.

While Milvus is down the rows wait in memory (events are still acknowledged: they are in the log)
and the flushes back off to `max_retry_seconds`; one warning when the writes start failing, one
line when the mirror has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from driftwise.model.profile import UserProfile
from driftwise.storage.vector_store import InterestRow, MilvusVectorStore

log = logging.getLogger(__name__)


class InterestMirror:
    def __init__(
        self,
        store: MilvusVectorStore,
        rows_of: Callable[[UserProfile], list[InterestRow]],
        interval_seconds: float = 0.2,
        max_retry_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._rows_of = rows_of
        self._interval = interval_seconds
        self._max_retry = max_retry_seconds
        self._wait = interval_seconds  # grows while the writes fail
        self._failing_since: float | None = None
        self._dirty: dict[str, UserProfile] = {}
        self._dirty_since: float | None = None  # monotonic time of the oldest unwritten change
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def mark(self, profiles: Iterable[UserProfile]) -> None:
        """Profiles changed: their rows are written by the next flush."""
        for p in profiles:
            self._dirty[p.user_id] = p
        if self._dirty and self._dirty_since is None:
            self._dirty_since = time.monotonic()

    @property
    def pending(self) -> int:
        """Users whose newest rows are not in Milvus yet."""
        return len(self._dirty)

    @property
    def lag_seconds(self) -> float:
        """How long the oldest unwritten change has waited (0 when nothing waits)."""
        return 0.0 if self._dirty_since is None else time.monotonic() - self._dirty_since

    async def forget(self, user_id: str) -> None:
        """The user is being deleted: drop a pending write (it would bring the rows back), after
        any flush in flight, whose retry could otherwise re-add it."""
        async with self._flushing:
            self._dirty.pop(user_id, None)

    async def flush(self) -> None:
        """Write every pending row now; failures are logged and the rows kept for the next try."""
        async with self._flushing:
            if not self._dirty:
                return
            pending, self._dirty = self._dirty, {}
            since, self._dirty_since = self._dirty_since, None
            rows = [row for p in pending.values() for row in self._rows_of(p)]
            try:
                await self._store.upsert_interests(rows)
            except Exception as exc:
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    log.warning("could not mirror %d interest rows to Milvus (%s); retrying", len(rows), exc)
                self._wait = min(self._max_retry, 2 * self._wait)
                for user_id, profile in pending.items():
                    self._dirty.setdefault(user_id, profile)  # newer states that arrived meanwhile win
                self._dirty_since = since
                return
            if self._failing_since is not None:
                log.warning(
                    "interest mirror caught up: %d rows written after %.1f s of failed writes",
                    len(rows),
                    time.monotonic() - self._failing_since,
                )
                self._failing_since = None
            self._wait = self._interval

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._wait)
            await self.flush()

    async def close(self) -> None:
        """Stop the background writer after a last flush."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
