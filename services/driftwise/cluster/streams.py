"""A bidi stream routed per message: one upstream stream per shard, answers in request order.

Each message goes to its user's shard over that shard's upstream stream, opened on the first
message for it. A shard answers its messages in the order it got them, so a FIFO of pending
answers per shard pairs each answer with its message; a global FIFO then answers the caller in
its order. At most WINDOW messages are in flight per caller stream: past that, the router stops
reading, and gRPC flow control holds the caller back (bounded memory, as on a shard).

If an upstream stream fails (the shard went away), each of its pending messages gets that status
as a per-message error and the caller's stream goes on; the next message for that shard opens a
new upstream stream. The messages' events may or may not be recorded: resending is safe, since
event ids are idempotent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

from driftwise.cluster.shards import CallOptions, upstream_status
from driftwise_client.v1 import common_pb2

WINDOW = 64

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class OpenStream(Protocol):
    """Opens the method's bidi call on a shard (with write/done_writing/read)."""

    def __call__(self, shard: int, options: CallOptions) -> grpc.aio.StreamStreamCall[Any, Any]: ...


@dataclass(eq=False)
class _Upstream:
    shard: int
    call: grpc.aio.StreamStreamCall[Any, Any]
    waiting: collections.deque[asyncio.Future[Any]] = field(default_factory=collections.deque)
    closed: bool = False
    reader: asyncio.Task[None] | None = None

    async def read_answers(self) -> None:
        """Resolve each waiting message's future with the shard's next answer."""
        failure: grpc.aio.AioRpcError | None = None  # None: cancelled
        try:
            while (response := await self.call.read()) is not grpc.aio.EOF:
                if self.waiting:
                    self.waiting.popleft().set_result(response)
            failure = _ended_early()
        except grpc.aio.AioRpcError as exc:
            failure = exc
        finally:
            self.closed = True
            while self.waiting:
                future = self.waiting.popleft()
                if future.done():
                    continue
                if failure is None:
                    future.cancel()
                else:
                    future.set_exception(failure)


def _ended_early() -> grpc.aio.AioRpcError:
    empty = grpc.aio.Metadata()
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, empty, empty, details="the shard ended the stream before answering"
    )


async def route_stream(
    requests: AsyncIterable[Req],
    *,
    shard_of: Callable[[Req], int],
    open_stream: OpenStream,
    options: CallOptions,
    addresses: list[str],
    error_response: Callable[[Req, common_pb2.Error], Resp],
) -> AsyncIterator[Resp]:
    """The caller's stream of answers; see the module docstring."""
    upstreams: dict[int, _Upstream] = {}
    in_order: asyncio.Queue[tuple[Req, asyncio.Future[Resp]] | None] = asyncio.Queue(WINDOW)

    def upstream(shard: int) -> _Upstream:
        current = upstreams.get(shard)
        if current is None or current.closed:
            current = _Upstream(shard, open_stream(shard, options))
            current.reader = asyncio.create_task(current.read_answers())
            upstreams[shard] = current
        return current

    async def send_all() -> None:
        try:
            async for request in requests:
                up = upstream(shard_of(request))
                answer: asyncio.Future[Resp] = asyncio.get_running_loop().create_future()
                up.waiting.append(answer)
                await in_order.put((request, answer))
                try:
                    await up.call.write(request)
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                    # the call has ended; its reader fails the waiting answers (this one too)
                    if not answer.done() and isinstance(exc, grpc.aio.AioRpcError):
                        answer.set_exception(exc)
            for up in upstreams.values():
                if not up.closed:
                    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                        await up.call.done_writing()
        finally:
            await in_order.put(None)

    sender = asyncio.create_task(send_all())
    try:
        while (item := await in_order.get()) is not None:
            request, answer = item
            try:
                yield await answer
            except grpc.aio.AioRpcError as exc:
                shard = shard_of(request)
                status = upstream_status(exc, shard, addresses[shard])
                yield error_response(
                    request, common_pb2.Error(code=status.code.value[0], message=status.details)
                )
        await sender  # re-raises a failure reading the caller's stream
    finally:
        sender.cancel()
        for up in upstreams.values():
            up.call.cancel()
            if up.reader is not None:
                up.reader.cancel()
