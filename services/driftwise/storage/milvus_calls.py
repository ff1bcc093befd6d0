"""How the vector store's Milvus calls run: one at a time on one thread, traced, outages told apart.

Every call goes through one worker thread: calls are serialised (Milvus Lite has lost rows under
concurrent writers) and the event loop stays free. The exception: a Milvus server's searches, the
calls of every Recommend, run as coroutines on the event loop (`run_on_loop`), concurrently.

Outages: every MilvusClient call has a deadline (`timeout`, set by the store: without one pymilvus
retries an unreachable server 75 times, backing off up to a minute), and so has its reconnection
(`connect_timeout`). A server that cannot be reached, is not ready yet or is too slow raises
`driftwise.errors.UnavailableError` (gRPC UNAVAILABLE); other Milvus errors (a bad expression: a
bug) stay as they are. While the server is known to be down, one call at a time tries it and the
others fail at once instead of queueing on the store's thread behind reconnection attempts.
pymilvus reconnects by itself when the server is back (checked with a restart on the same port);
after a restart the collections answer "collection not loaded" for some seconds while the server
loads them again: also UNAVAILABLE.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from pymilvus.exceptions import (
    ConnectError,
    ConnectionNotExistException,
    MilvusException,
    MilvusUnavailableException,
)

from driftwise.errors import UnavailableError
from driftwise.observability.tracing import client_span
from driftwise.storage.serial import SerialWorker

# Milvus error codes of a server that is down or still starting: pymilvus's CONNECT_FAILED (2),
# the server's CollectionNotLoaded (101, for seconds after a restart) and ChannelNotAvailable (503)
_OUTAGE_CODES = {2, 101, 503}
_OUTAGE_STATUSES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class _FirstLineOnly(logging.Filter):
    """pymilvus logs every failed call with tracebacks (~100 lines each, thousands of lines a
    minute while a server is down) through its own handler: keep the first line of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = record.getMessage().split("\n", 1)[0], None
        record.exc_info, record.exc_text = None, None
        return True


for _handler in logging.getLogger("pymilvus").handlers:
    _handler.addFilter(_FirstLineOnly())
log = logging.getLogger(__name__)


class MilvusCalls:
    """Runs the calls of one store against the Milvus at `uri` (named in the outage logs)."""

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._down_since: float | None = None  # monotonic time of the first failure of an outage
        self.last_outage = ""  # what the last outage's first failed call said
        self._trying = False  # while down: a call is trying the server
        self._worker = SerialWorker("milvus")

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` on the store's thread, in a client span named after `fn`;
        UnavailableError if Milvus is down (at once while another call is trying it)."""
        return await self._guarded(fn, args, lambda: self._worker.run(fn, *args, **kwargs))

    async def run_on_loop(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`await fn(*args, **kwargs)`, a coroutine of pymilvus's AsyncMilvusClient, on the event
        loop (no hand-off to the store's thread and back), with `run`'s span and outage rules."""
        return await self._guarded(fn, args, lambda: fn(*args, **kwargs))

    async def _guarded(self, fn: Any, args: tuple[Any, ...], call: Any) -> Any:
        operation = getattr(fn, "__name__", "call").lstrip("_")
        collection = args[0] if args and isinstance(args[0], str) else ""
        down = self._down_since is not None
        if down and self._trying:
            raise UnavailableError(f"vector store unavailable ({operation}): reconnecting to Milvus")
        self._trying = down
        with client_span(
            f"milvus.{operation}", "milvus", {"db.system": "milvus", "db.collection.name": collection}
        ):
            try:
                result = await call()
            except Exception as exc:
                if not _is_outage(exc):
                    raise
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    self.last_outage = _describe(exc)
                    log.warning("Milvus at %s unavailable: %s", self._uri, self.last_outage)
                raise UnavailableError(f"vector store unavailable ({operation}): {_describe(exc)}") from exc
            finally:
                if down:
                    self._trying = False
        if self._down_since is not None:
            log.warning(
                "Milvus at %s available again after %.1f s", self._uri, time.monotonic() - self._down_since
            )
            self._down_since = None
        return result

    @property
    def down_for(self) -> float | None:
        """Seconds since the current outage began (its first failed call); None while Milvus
        answers."""
        return None if self._down_since is None else time.monotonic() - self._down_since

    def shutdown(self) -> None:
        self._worker.shutdown()


def _is_outage(exc: BaseException | None) -> bool:
    """Milvus down, starting or too slow (worth retrying later), as opposed to a bad request."""
    while exc is not None:
        if isinstance(exc, ConnectError | ConnectionNotExistException | MilvusUnavailableException):
            return True
        if isinstance(exc, MilvusException) and (exc.code in _OUTAGE_CODES or exc.code in _OUTAGE_STATUSES):
            return True  # after its retries pymilvus raises with the grpc status as the code
        if isinstance(exc, grpc.RpcError) and exc.code() in _OUTAGE_STATUSES:
            return True
        exc = exc.__cause__
    return False


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, MilvusException) else f"{type(exc).__name__}: {exc}"
