"""Per-RPC Prometheus metrics: counts and latencies by method and final status code, open streams
(the other metrics: driftwise.observability.metrics)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from driftwise.api.interceptors.base import Handler, MethodInterceptor, rewrap
from driftwise.observability.metrics import LATENCY_BUCKETS


class RpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "driftwise_rpc_requests",
            "Finished RPCs by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "driftwise_rpc_duration_seconds",
            "Server-side RPC duration by method and status code (streams: their whole life).",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.streams = Gauge(
            "driftwise_streams_open", "Streaming RPCs in progress by method.", ["method"], registry=registry
        )

    def record(self, method: str, code: grpc.StatusCode, started: float) -> None:
        name = code.name
        self.requests.labels(method, name).inc()
        self.latency.labels(method, name).observe(time.perf_counter() - started)


def _code(context: grpc.aio.ServicerContext[Any, Any], failed: bool) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK


class MetricsInterceptor(MethodInterceptor):
    """Counts and times every RPC by its final status code; tracks open streams (Driftwise's own
    methods: not health probes, and grpc's streaming health Watch is a coroutine)."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method.rsplit("/", 1)[-1]
        metrics = self._metrics

        def unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failed = time.perf_counter(), True
                try:
                    response = await behavior(request, context)
                    failed = False
                    return response
                finally:
                    metrics.record(method, _code(context, failed), started)

            return wrapper

        def streaming(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            async def wrapper(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                started, failed = time.perf_counter(), True
                metrics.streams.labels(method).inc()
                try:
                    async for response in behavior(request, context):
                        yield response
                    failed = False
                finally:
                    metrics.streams.labels(method).dec()
                    metrics.record(method, _code(context, failed), started)

            return wrapper

        return rewrap(handler, unary, streaming)
