"""Real servers for integration tests: one Triton for the session, all-in-one apps on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftwise.datasets.movielens import Movie, load_movies
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.server import App
from driftwise.settings import REPO_ROOT
from tests.integration.support import Client, app_and_client, settings_for

CATALOGUE_SIZE = 400  # the first MovieLens movies: enough variety, encoded in seconds


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTritonServer]:
    server = LocalTritonServer(
        REPO_ROOT / "model_repository",
        models=["text_encoder"],
        log_path=tmp_path_factory.mktemp("triton") / "triton.log",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def movies() -> list[Movie]:
    return load_movies()[:CATALOGUE_SIZE]


@pytest.fixture(scope="module")
async def loaded(
    triton: LocalTritonServer, movies: list[Movie], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[App, Client]]:
    """An all-in-one app with the small catalogue upserted and no events."""
    async with app_and_client(settings_for(tmp_path_factory.mktemp("data"), triton)) as (app, client):
        await client.upsert_movies(movies)
        yield app, client


@pytest.fixture(scope="module")
def memory_spans() -> InMemorySpanExporter:
    """The process's tracer provider with an in-memory exporter (installed once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
