"""The deployment unit: by default local Triton + the four gRPC services in one process.

`running_app(settings)` is used by `driftwise serve`, the demo and the integration tests alike.
settings.server.role picks what the process is (docs/architecture.md §6):
- all: the engine and the four services (ingest, profiles, ranking, insights) in one process (the
  embedded default);
- ingest / worker / ranking: the roles of cluster mode on NATS JetStream (settings.cluster.nats_urls),
  built by driftwise.cluster.serving on the parts of this module.
Every role serves TLS / mutual TLS per settings.tls and checks tokens per settings.auth
(driftwise.api.interceptors.auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from prometheus_client import CollectorRegistry
from threadpoolctl import threadpool_limits

from driftwise.api.ingest import IngestServicer
from driftwise.api.insight import InsightServicer
from driftwise.api.interceptors import server_chain
from driftwise.api.interceptors.auth import AuthInterceptor
from driftwise.api.interceptors.errors import ErrorMappingInterceptor
from driftwise.api.interceptors.metrics import MetricsInterceptor, RpcMetrics
from driftwise.api.interceptors.streams import StreamClosing
from driftwise.api.profile import ProfileServicer
from driftwise.api.ranking import RankingServicer
from driftwise.engine import Engine
from driftwise.errors import StartupError
from driftwise.inference.encoder import TritonTextEncoder
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.observability.metrics import StateCollector, serve_metrics
from driftwise.observability.tracing import configure_tracing, tracing_enabled, triton_trace_args
from driftwise.privacy import UserIdScheme
from driftwise.security.tls import server_credentials, triton_channel_credentials
from driftwise.security.tokens import TokenTable
from driftwise.settings import Settings
from driftwise.storage.milvus_tls import MilvusTls
from driftwise.supervision import Supervisor
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    insight_service_pb2,
    insight_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    profile_service_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,
    ranking_service_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name,
    insight_service_pb2.DESCRIPTOR.services_by_name["InsightService"].full_name,
)


@dataclass
class App:
    settings: Settings
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    triton: LocalTritonServer | None = None
    engine_or_none: Engine | None = None  # None on the cluster roles (they run no embedded engine)
    metrics_port: int | None = None  # the Prometheus endpoint, when observability.metrics_port is set
    health_port: int | None = None  # plaintext health-only port, when server.health_port is set
    triton_supervisor: Supervisor | None = None  # restarts the local Triton when it dies

    @property
    def engine(self) -> Engine:
        if self.engine_or_none is None:
            raise RuntimeError(f"role {self.settings.server.role} runs no embedded engine")
        return self.engine_or_none

    @property
    def target(self) -> str:
        return f"{self.settings.server.host}:{self.port}"


@dataclass(frozen=True)
class ServerFiles:
    """What the files named by settings.tls, settings.auth and settings.triton.tls_* hold, read
    before anything starts: a missing or bad file stops the start at once (StartupError), not
    after Triton has loaded."""

    credentials: grpc.ServerCredentials | None  # None: plaintext
    auth: list[grpc.aio.ServerInterceptor]  # the token check, when settings.auth.enabled
    # the encoder's channel to a remote Triton: None is plaintext (always for the local Triton)
    triton_credentials: grpc.ChannelCredentials | None = None
    triton_options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, settings: Settings) -> ServerFiles:
        credentials = server_credentials(settings.tls)
        auth: list[grpc.aio.ServerInterceptor] = []
        if settings.auth.enabled and settings.auth.tokens_file is not None:
            tokens = TokenTable.load(settings.auth.tokens_file)
            auth.append(AuthInterceptor(tokens))
            log.info("token authentication on: %d tokens", len(tokens))
        triton = triton_channel_credentials(settings.triton)  # every role encodes through Triton
        if triton[0] is not None:
            log.info(
                "TLS to Triton at %s%s",
                settings.triton.url,
                " (mutual)" if settings.triton.tls_cert_file else "",
            )
        return cls(credentials, auth, triton[0], tuple(triton[1]))


async def start_grpc_server(
    engine: Engine,
    files: ServerFiles,
    telemetry: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer, StreamClosing]:
    """The four services on the engine; `telemetry` runs before authentication (refused calls
    are measured too)."""

    def add(server: grpc.aio.Server) -> None:
        ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(engine), server)
        profile_service_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(engine), server)
        ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(engine), server)
        insight_service_pb2_grpc.add_InsightServiceServicer_to_server(InsightServicer(engine), server)

    return await start_server(engine.settings, files, add, SERVICE_NAMES, telemetry)


async def start_server(
    settings: Settings,
    files: ServerFiles,
    add_services: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    telemetry: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer, StreamClosing]:
    streams = StreamClosing()
    server = grpc.aio.server(
        interceptors=server_chain(telemetry, files.auth, ErrorMappingInterceptor(), streams),
        options=[("grpc.max_receive_message_length", settings.limits.max_message_bytes)],
    )
    add_services(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.server.host}:{settings.server.port}"
    if files.credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, files.credentials)
        log.info("TLS on%s", " (mutual: client certificates required)" if settings.tls.client_ca_file else "")
    await server.start()
    for name in ("", *service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer, streams


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[App]:
    """Start what settings.server.role needs; stop it in reverse order on exit.

    all: Triton (unless settings.triton.url names one), the engine and the gRPC server.
    ingest / worker / ranking: cluster mode on JetStream (driftwise.cluster.serving).
    Shutdown: health NOT_SERVING, drain calls, then close stores and Triton."""
    if settings.server.role != "all":
        if not settings.cluster.nats_urls:
            raise StartupError(
                f"role {settings.server.role} is a role of cluster mode on JetStream: set cluster.nats_urls"
            )
        from driftwise.cluster.serving import running_on_jetstream  # it builds on this module

        async with running_on_jetstream(settings) as app:
            yield app
        return
    files = ServerFiles.read(settings)
    milvus_tls = MilvusTls.from_settings(settings.milvus)
    if milvus_tls is not None:
        milvus_tls.check()  # before Triton starts; the store checks again when it opens
    user_ids = UserIdScheme.from_settings(settings.privacy)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        telemetry = Telemetry.start(stack, settings)
        # Serving multiplies small matrices (a batch of events, a few hundred candidates): BLAS
        # threads only contend with the request threads there (7x slower on 2 busy cores, measured)
        stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        url = settings.triton.url
        triton, supervisor = None, None
        if not url:
            triton, supervisor = await _start_local_triton(stack, settings)
            url = triton.grpc_url
        encoder = await connected_encoder(stack, settings, url, files)
        engine = await Engine.open(settings, encoder, user_ids)
        stack.push_async_callback(engine.close)
        if supervisor is not None:  # GetServerStats says whether it runs and how often it restarted
            engine.local_triton = _local_triton(supervisor)
        telemetry.collect(_state_collector(encoder, engine, supervisor))
        server, port, health_servicer, streams = await start_grpc_server(
            engine, files, telemetry=telemetry.interceptors
        )
        health_port = await serve_health_port(stack, settings, health_servicer)
        stack.push_async_callback(shutdown, settings, server, health_servicer, streams)
        if supervisor is not None:  # runs first on exit: no restart once shutdown has begun
            stack.push_async_callback(supervisor.close)
        log.info("serving %s on %s:%d", ", ".join(SERVICE_NAMES), settings.server.host, port)
        yield App(
            settings,
            server,
            port,
            health_servicer,
            triton,
            engine,
            telemetry.metrics_port,
            health_port,
            triton_supervisor=supervisor,
        )


async def _start_local_triton(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[LocalTritonServer, Supervisor]:
    """A local Triton server, restarted by a supervisor when it dies; both stopped on exit."""
    triton = LocalTritonServer(
        settings.triton.model_repository,
        models=[settings.triton.model_name],
        config_name=settings.triton.config_name or None,
        startup_timeout_s=settings.triton.startup_timeout_seconds,
        log_path=settings.data_dir / "triton.log",
        extra_args=triton_trace_args(),  # Triton's spans join the callers' traces
        # a Triton that outlived a crash of the previous run here is stopped first
        record_path=settings.data_dir / "local-triton.json",
    )
    log.info("starting the local Triton server (log: %s)", settings.data_dir / "triton.log")
    await asyncio.to_thread(triton.start)
    stack.callback(triton.stop)
    supervisor = Supervisor(
        triton,
        "local tritonserver",
        backoff_seconds=settings.triton.restart_backoff_seconds,
        max_backoff_seconds=settings.triton.restart_max_backoff_seconds,
    )
    supervisor.start()
    stack.push_async_callback(supervisor.close)  # before triton.stop
    return triton, supervisor


async def connected_encoder(
    stack: contextlib.AsyncExitStack, settings: Settings, url: str, files: ServerFiles
) -> TritonTextEncoder:
    encoder = TritonTextEncoder(
        url,
        model_name=settings.triton.model_name,
        timeout_s=settings.triton.request_timeout_seconds,
        max_batch_size=settings.triton.max_batch_size,
        max_in_flight=settings.triton.max_in_flight,
        cache_size=settings.triton.cache_size,
        batch_window_s=settings.triton.batch_window_seconds,
        credentials=files.triton_credentials,
        channel_options=files.triton_options,
    )
    stack.push_async_callback(encoder.close)
    await encoder.connect()
    return encoder


def _state_collector(
    encoder: TritonTextEncoder, engine: Engine, supervisor: Supervisor | None
) -> StateCollector:
    """What the metrics read at scrape time from the parts that count for themselves."""
    return StateCollector(
        encoder_stats=lambda: encoder.stats,
        triton=None if supervisor is None else _local_triton(supervisor),
        item_cache=lambda: (engine.items.hits, engine.items.misses, len(engine.items)),
        mirror=lambda: (engine.interest_mirror.pending, engine.interest_mirror.lag_seconds),
        refit=lambda: engine.refitted,
        unrepresented=(lambda: engine.coverage.stats) if engine.coverage.active else None,
        quality=engine.stats.quality.by_reason_and_layer,
    )


def _local_triton(supervisor: Supervisor) -> Callable[[], tuple[bool, int]]:
    return lambda: (supervisor.up, supervisor.restarts)


async def serve_health_port(
    stack: contextlib.AsyncExitStack, settings: Settings, health_servicer: health.aio.HealthServicer
) -> int | None:
    """The same health servicer in plaintext on server.health_port (kubelet's gRPC probes speak no
    TLS): it reveals only SERVING / NOT_SERVING. Stopped after the main server (exit stack order)."""
    if settings.server.health_port is None:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(f"{settings.server.host}:{settings.server.health_port}")
    await server.start()
    stack.push_async_callback(server.stop, 0)
    log.info("health checks in plaintext on %s:%d", settings.server.host, port)
    return port


@dataclass
class Telemetry:
    """Tracing (when the OTEL_* variables configure it) and metrics (when a port is set): the
    interceptors they add to the server, and the metrics endpoint."""

    interceptors: list[grpc.aio.ServerInterceptor]
    registry: CollectorRegistry | None
    metrics_port: int | None

    @classmethod
    def start(cls, stack: contextlib.AsyncExitStack, settings: Settings) -> Telemetry:
        interceptors: list[grpc.aio.ServerInterceptor] = []
        provider = configure_tracing(f"driftwise-{settings.server.role}")
        if provider is not None:
            stack.callback(provider.shutdown)  # exports the spans still buffered
        if tracing_enabled():  # not even no-op interceptors on the request path otherwise
            not_probes = filters.negate(filters.health_check())  # probes every few seconds: no spans
            interceptors.append(aio_server_interceptor(filter_=not_probes))  # type: ignore[no-untyped-call]
        registry, port = None, None
        observability = settings.observability
        if observability.metrics_port is not None:
            registry = CollectorRegistry()
            interceptors.append(MetricsInterceptor(RpcMetrics(registry)))
            http, port = serve_metrics(registry, observability.metrics_host, observability.metrics_port)
            stack.callback(http.server_close)
            stack.callback(http.shutdown)
            log.info("metrics on http://%s:%d/metrics", observability.metrics_host, port)
        return cls(interceptors, registry, port)

    def collect(self, collector: StateCollector) -> None:
        if self.registry is not None:
            self.registry.register(collector)


async def shutdown(
    settings: Settings,
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    streams: StreamClosing,
) -> None:
    """Health NOT_SERVING (probes and health watchers see it), the streams ended with UNAVAILABLE,
    then no new calls and the calls in flight get settings.server.grace_seconds to finish (grpc.aio
    cancels what is left after it). Stores and Triton are closed after this (running_app)."""
    await health_servicer.enter_graceful_shutdown()
    streams.close()
    started = time.monotonic()
    await server.stop(settings.server.grace_seconds)
    log.info("gRPC server stopped in %.2f s", time.monotonic() - started)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_app(settings) as app:
        print(f"driftwise serving on {app.target} (Ctrl-C to stop)", flush=True)
        await stop.wait()
        log.info("shutting down")
