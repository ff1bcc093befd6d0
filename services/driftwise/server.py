"""The all-in-one deployment unit: local Triton + the three gRPC services in one process.

`running_app(settings)` is used by `driftwise serve`, the demo and the integration tests alike.
On a cluster the same servicers run as separate Deployments against a remote Triton
(settings.triton.url) and a Milvus server (settings.milvus.uri).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from threadpoolctl import threadpool_limits

from driftwise.api.errors import ErrorMappingInterceptor
from driftwise.api.ingest import IngestServicer
from driftwise.api.profile import ProfileServicer
from driftwise.api.ranking import RankingServicer
from driftwise.engine import Engine
from driftwise.inference.encoder import TritonTextEncoder
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.settings import Settings
from driftwise.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
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
)


@dataclass
class App:
    engine: Engine
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    triton: LocalTritonServer | None

    @property
    def target(self) -> str:
        return f"{self.engine.settings.server.host}:{self.port}"


async def start_grpc_server(engine: Engine) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    settings = engine.settings.server
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
    ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(engine), server)
    profile_service_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(engine), server)
    ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(engine), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[App]:
    """Start Triton (unless settings.triton.url names one), the engine and the gRPC server;
    stop them in reverse order on exit: health NOT_SERVING, drain calls, close stores, Triton."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        # Serving multiplies small matrices (a batch of events, a few hundred candidates): BLAS
        # threads only contend with the request threads there (7x slower on 2 busy cores, measured)
        stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        url = settings.triton.url
        triton = None
        if not url:
            triton = LocalTritonServer(
                settings.triton.model_repository,
                models=[settings.triton.model_name],
                config_name=settings.triton.config_name or None,
                startup_timeout_s=settings.triton.startup_timeout_seconds,
                log_path=settings.data_dir / "triton.log",
            )
            log.info("starting the local Triton server (log: %s)", settings.data_dir / "triton.log")
            await asyncio.to_thread(triton.start)
            stack.callback(triton.stop)
            url = triton.grpc_url
        encoder = TritonTextEncoder(
            url,
            model_name=settings.triton.model_name,
            timeout_s=settings.triton.request_timeout_seconds,
            max_batch_size=settings.triton.max_batch_size,
            max_in_flight=settings.triton.max_in_flight,
            cache_size=settings.triton.cache_size,
            batch_window_s=settings.triton.batch_window_seconds,
        )
        stack.push_async_callback(encoder.close)
        await encoder.connect()
        engine = await Engine.open(settings, encoder)
        stack.push_async_callback(engine.close)
        server, port, health_servicer = await start_grpc_server(engine)

        async def shutdown() -> None:
            await health_servicer.enter_graceful_shutdown()
            await server.stop(settings.server.grace_seconds)

        stack.push_async_callback(shutdown)
        log.info("serving %s on %s:%d", ", ".join(SERVICE_NAMES), settings.server.host, port)
        yield App(engine, server, port, health_servicer, triton)


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
