"""Streams end promptly at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from driftwise.api.interceptors.base import Handler, MethodInterceptor, Streaming, rewrap
from driftwise.concurrency import Closing
from driftwise.errors import UnavailableError


class StreamClosing(MethodInterceptor):
    """Ends Driftwise's streams with UNAVAILABLE "server shutting down" once `close()` is called.

    grpc.aio's `server.stop(grace)` lets calls run until the grace ends and then cancels them: a
    WatchProfile stream (idle until the profile changes) or an open StreamFeedback / StreamEvents
    would hold the whole grace and end CANCELLED. Instead, at the start of shutdown:
    - a server stream (WatchProfile) stops waiting for its next message and ends at once;
    - a bidi stream reads no more messages: the one being handled is answered, then it ends.
    The status is UNAVAILABLE (a client retries elsewhere; resending is safe, event ids are
    idempotent). Runs inside the error mapping, which turns the UnavailableError into the status;
    unary calls are left to the grace period, other services (health, reflection) to grpc.aio.
    """

    def __init__(self) -> None:
        self._closing = Closing()

    def close(self) -> None:
        self._closing.close()

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if handler.unary_stream:
            return rewrap(handler, lambda b: b, self._guard_responses)
        if handler.stream_stream:
            return rewrap(handler, lambda b: b, self._guard_requests)
        return handler

    @staticmethod
    def _shutting_down() -> UnavailableError:
        return UnavailableError("server shutting down")

    def _guard_responses(self, behavior: Streaming) -> Streaming:
        def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            return self._closing.guard(behavior(request, context), self._shutting_down)

        return guarded

    def _guard_requests(self, behavior: Streaming) -> Streaming:
        def guarded(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            return behavior(self._closing.guard(requests, self._shutting_down), context)

        return guarded
