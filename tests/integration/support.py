"""Helpers for integration tests: gRPC stubs and all-in-one apps on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from driftwise.datasets.movielens import Movie
from driftwise.demo import item_message
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App, running_app
from driftwise.settings import ServerSettings, Settings, TritonSettings
from driftwise.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    profile_service_pb2_grpc,
    ranking_service_pb2_grpc,
)


@dataclass
class Client:
    """Stubs of the three services over one channel."""

    channel: grpc.aio.Channel
    ingest: ingest_service_pb2_grpc.IngestServiceStub
    profiles: profile_service_pb2_grpc.ProfileServiceStub
    ranking: ranking_service_pb2_grpc.RankingServiceStub

    @classmethod
    def connect(cls, target: str) -> Client:
        channel = grpc.aio.insecure_channel(target)
        return cls(
            channel,
            ingest_service_pb2_grpc.IngestServiceStub(channel),
            profile_service_pb2_grpc.ProfileServiceStub(channel),
            ranking_service_pb2_grpc.RankingServiceStub(channel),
        )

    async def upsert_movies(self, movies: list[Movie]) -> None:
        for i in range(0, len(movies), 200):
            items = [item_message(m) for m in movies[i : i + 200]]
            await self.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items), timeout=120)


def settings_for(data_dir: Path, triton: LocalTritonServer) -> Settings:
    return Settings(
        data_dir=data_dir, server=ServerSettings(port=0), triton=TritonSettings(url=triton.grpc_url)
    )


@contextlib.asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[App, Client]]:
    async with running_app(settings) as app:
        client = Client.connect(app.target)
        try:
            yield app, client
        finally:
            await client.channel.close()
