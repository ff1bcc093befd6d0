"""What a process of cluster mode on JetStream runs (settings.cluster.nats_urls set), by role:

    ingest    IngestService: items to Milvus, events published to the stream (cluster/ingest.py)
    worker    no service of its own (health only): applies its leased partitions (cluster/worker.py)
    ranking   RankingService and ProfileService from the snapshots (cluster/ranking.py), and
              InsightService as far as a replica without the event log can answer it
              (cluster/insights.py)

Every role reaches Triton by triton.url, over TLS per triton.tls_* (the topic labels are encoded at
start, events at ingest), and JetStream by cluster.nats_urls, with TLS and credentials per
cluster.nats_* (cluster/nats_security.py); ingest and ranking reach Milvus by milvus_uri."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Callable

import grpc
from threadpoolctl import threadpool_limits

from driftwise.api.ingest import IngestServicer
from driftwise.api.insight import InsightServicer
from driftwise.api.profile import ProfileServicer
from driftwise.api.ranking import RankingServicer
from driftwise.cluster.event_stream import EventStream
from driftwise.cluster.ingest import StreamIngest
from driftwise.cluster.insights import ClusterInsights
from driftwise.cluster.leases import PartitionLeases
from driftwise.cluster.nats_security import NatsSecurity
from driftwise.cluster.ranking import SnapshotRanking
from driftwise.cluster.reads import ConfiguredModels, SnapshotReads
from driftwise.cluster.snapshots import ProfileSnapshots
from driftwise.cluster.worker import ProfileWorker
from driftwise.engine.catalogue import Catalogue
from driftwise.engine.encoding import EventEncoding, encode_texts
from driftwise.engine.facade import open_store
from driftwise.engine.insights import CatalogueReads
from driftwise.engine.recommend import Recommender
from driftwise.errors import StartupError
from driftwise.inference.coverage import TextCoverage
from driftwise.inference.encoder import TextEncoder
from driftwise.model.impressions import Impressions
from driftwise.model.topics import TopicModel
from driftwise.observability.metrics import StateCollector
from driftwise.privacy import UserIdScheme
from driftwise.server import (
    SERVICE_NAMES,
    App,
    ServerFiles,
    Telemetry,
    connected_encoder,
    serve_health_port,
    shutdown,
    start_server,
)
from driftwise.settings import Settings
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.milvus_tls import MilvusTls
from driftwise_client.v1 import (
    ingest_service_pb2_grpc,
    insight_service_pb2_grpc,
    profile_service_pb2_grpc,
    ranking_service_pb2_grpc,
)

log = logging.getLogger(__name__)

AddServices = Callable[[grpc.aio.Server], None]


@contextlib.asynccontextmanager
async def running_on_jetstream(settings: Settings) -> AsyncIterator[App]:
    if not settings.triton.url:
        raise StartupError("cluster roles reach Triton by triton.url; none is set")
    files = ServerFiles.read(settings)  # with the Triton TLS credentials of these roles
    cluster = settings.cluster
    nats_security = NatsSecurity.read(cluster)  # the files too, before anything starts
    # the workers open no Milvus and see stored ids only
    user_ids = None if settings.server.role == "worker" else _milvus_checked(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Milvus Lite's file, Triton's log
    async with contextlib.AsyncExitStack() as stack:
        telemetry = Telemetry.start(stack, settings)
        stack.enter_context(threadpool_limits(limits=1, user_api="blas"))  # see running_app
        encoder = await connected_encoder(stack, settings, settings.triton.url, files)
        labels = list(settings.interest.topics)
        centroids = await encode_texts(encoder, labels, "query")
        topics = TopicModel(labels, centroids, settings.interest.assignment_temperature)
        log.info("NATS at %s: %s", ", ".join(cluster.nats_urls), nats_security.describe())
        stream = await EventStream.open(
            cluster.nats_urls,
            partitions=cluster.partitions,
            replicas=cluster.stream_replicas,
            security=nats_security,
        )
        stack.push_async_callback(stream.close)
        snapshots = await ProfileSnapshots.open(
            stream.js, partitions=cluster.partitions, replicas=cluster.stream_replicas
        )
        if settings.server.role == "worker":
            add, names = await _worker(stack, settings, stream, snapshots, topics, encoder.dimension)
        else:
            store = await open_store(settings, encoder.dimension)
            stack.push_async_callback(store.close)
            coverage = TextCoverage(settings.triton.model_name, None, settings.triton.unknown_share_threshold)
            items = ItemCache(store, settings.milvus.item_cache_size, settings.milvus.item_cache_ttl_seconds)
            assert user_ids is not None
            catalogue = Catalogue(user_ids, store, items, EventEncoding(encoder, coverage))
            ingest = StreamIngest(settings, catalogue, stream)
            if settings.server.role == "ingest":
                add, names = _ingest(ingest)
            else:
                add, names = _ranking(stack, telemetry, ingest, SnapshotReads(snapshots, topics), encoder)
        server, port, health_servicer, streams = await start_server(
            settings, files, add, names, telemetry=telemetry.interceptors
        )
        health_port = await serve_health_port(stack, settings, health_servicer)
        stack.push_async_callback(shutdown, settings, server, health_servicer, streams)
        log.info(
            "%s on JetStream: serving %s on port %d", settings.server.role, ", ".join(names) or "health", port
        )
        yield App(
            settings,
            server,
            port,
            health_servicer,
            metrics_port=telemetry.metrics_port,
            health_port=health_port,
        )


def _milvus_checked(settings: Settings) -> UserIdScheme:
    """The files for TLS to Milvus checked; the user ids' scheme (reads the key)."""
    milvus_tls = MilvusTls.from_settings(settings.milvus)
    if milvus_tls is not None:
        milvus_tls.check()
    return UserIdScheme.from_settings(settings.privacy)


def _ingest(ingest: StreamIngest) -> tuple[AddServices, tuple[str, ...]]:
    def add(server: grpc.aio.Server) -> None:
        ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(ingest), server)

    return add, (SERVICE_NAMES[0],)


def _ranking(
    stack: contextlib.AsyncExitStack,
    telemetry: Telemetry,
    ingest: StreamIngest,
    reads: SnapshotReads,
    encoder: TextEncoder,
) -> tuple[AddServices, tuple[str, ...]]:
    """RankingService and ProfileService from the snapshots, InsightService as far as a replica
    can answer it; the online quality of its lists on the metrics endpoint."""
    reads.start()
    stack.push_async_callback(reads.close)
    snapshots = reads.snapshots
    settings, catalogue = ingest.settings, ingest.catalogue
    user_ids, store, items = catalogue.user_ids, catalogue.store, catalogue.items
    impressions = Impressions(settings.limits.impressions_remembered)
    models = ConfiguredModels(settings.ranking, reads.topics)
    recommender = Recommender(settings, user_ids, store, items, reads, models, impressions)
    ranking = SnapshotRanking(
        settings, user_ids, recommender, reads, snapshots, ingest, ingest.stream, store, impressions
    )
    catalogue_reads = CatalogueReads(store, items, catalogue.encoding)
    insights = ClusterInsights(settings, catalogue_reads, reads, encoder, recommender.stats)
    telemetry.collect(StateCollector(quality=recommender.stats.quality.by_reason_and_layer))

    def add(server: grpc.aio.Server) -> None:
        profile_service_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(ranking), server)
        ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(ranking), server)
        insight_service_pb2_grpc.add_InsightServiceServicer_to_server(InsightServicer(insights), server)

    return add, SERVICE_NAMES[1:]


async def _worker(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    stream: EventStream,
    snapshots: ProfileSnapshots,
    topics: TopicModel,
    dimension: int,
) -> tuple[AddServices, tuple[str, ...]]:
    cluster = settings.cluster
    leases = await PartitionLeases.open(
        stream.nc,
        worker_id=cluster.worker_id or _default_worker_id(),
        partitions=cluster.partitions,
        replicas=cluster.stream_replicas,
        ttl_s=cluster.lease_ttl_seconds,
        heartbeat_s=cluster.lease_heartbeat_seconds,
    )
    worker = ProfileWorker(stream, leases, snapshots, topics, settings.interest, dimension)
    await worker.start()
    stack.push_async_callback(worker.stop)  # hands the leases back: others take over at once
    return (lambda server: None), ()


def _default_worker_id() -> str:
    """The host name (a pod's name) and the pid, as a KV key token allows."""
    return re.sub(r"[^-_a-zA-Z0-9]", "-", f"{socket.gethostname()}-{os.getpid()}")
