"""The event log as the engine uses it: one connection that writes on its own thread, and a second
one for reads on another (WAL lets them run beside a write, so ranking never waits behind an
ingest batch's fsync)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from driftwise.storage.event_log import EventLog
from driftwise.storage.serial import SerialWorker

P = ParamSpec("P")
T = TypeVar("T")


class LogAccess:
    def __init__(self, path: Path) -> None:
        self.log = EventLog(path)  # the writer; also read directly where a writer must see its own writes
        self.reads = EventLog(path)
        self._write_thread = SerialWorker("event-log")
        self._read_thread = SerialWorker("event-log-reads")

    async def write(
        self, method: Callable[Concatenate[EventLog, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`method` (an EventLog method) on the writing connection, on its thread."""
        return await self._write_thread.run(lambda: method(self.log, *args, **kwargs))

    async def read(
        self, method: Callable[Concatenate[EventLog, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`method` (an EventLog method) on the reading connection, on its thread."""
        return await self._read_thread.run(lambda: method(self.reads, *args, **kwargs))

    async def close(self) -> None:
        await self._read_thread.run(self.reads.close)
        self._read_thread.shutdown()
        await self._write_thread.run(self.log.close)
        self._write_thread.shutdown()

    def close_now(self) -> None:
        """Before any thread ran (a failed open)."""
        self.reads.close()
        self.log.close()
        self._read_thread.shutdown()
        self._write_thread.shutdown()
