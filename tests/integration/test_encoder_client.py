"""The smart encoder client against the real Triton: coalescing, LRU cache, retries, errors."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from driftwise.inference.encoder import EncoderUnavailableError, TritonTextEncoder
from driftwise.inference.triton_server import LocalTritonServer

pytestmark = pytest.mark.integration

TITLES = [
    f"Movie {i}: a story about {topic}"
    for i, topic in enumerate(
        [
            "dragons",
            "bank robbers",
            "a space station",
            "a small town",
            "pirates",
            "a chess prodigy",
            "a haunted house",
            "the first moon landing",
        ]
        * 4
    )
]


async def test_concurrent_calls_are_coalesced_into_few_requests(triton: LocalTritonServer) -> None:
    encoder = TritonTextEncoder(triton.grpc_url, cache_size=0, batch_window_s=0.01)
    try:
        singles = await asyncio.gather(*(encoder.encode([t]) for t in TITLES))
        assert encoder.stats.requests <= 2, encoder.stats  # 32 calls, one window
        together = await encoder.encode(TITLES)
        np.testing.assert_allclose(np.concatenate(singles), together, atol=1e-5)
    finally:
        await encoder.close()


async def test_repeated_texts_are_served_from_the_cache(triton: LocalTritonServer) -> None:
    encoder = TritonTextEncoder(triton.grpc_url, cache_size=100)
    try:
        first = await encoder.encode(TITLES[:8])
        requests = encoder.stats.requests
        again = await encoder.encode(TITLES[:8][::-1])
        assert encoder.stats.requests == requests and encoder.stats.cache_hits == 8
        np.testing.assert_array_equal(again, first[::-1])
        await encoder.encode(TITLES[8:16])  # same model and role, new texts: a request
        assert encoder.stats.requests > requests
    finally:
        await encoder.close()


async def test_a_text_in_flight_is_not_sent_twice(triton: LocalTritonServer) -> None:
    encoder = TritonTextEncoder(triton.grpc_url, cache_size=0)
    try:
        a, b = await asyncio.gather(encoder.encode(["same text", "other"]), encoder.encode(["same text"]))
        np.testing.assert_array_equal(a[0], b[0])
        assert encoder.stats.sent_texts == 2 and encoder.stats.coalesced == 1
    finally:
        await encoder.close()


async def test_unavailable_is_retried_then_reported(triton: LocalTritonServer) -> None:
    encoder = TritonTextEncoder(triton.grpc_url, retries=2, timeout_s=5)
    await encoder.connect()
    with socket.socket() as s:  # a port nobody listens on: every attempt is UNAVAILABLE
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    down = TritonTextEncoder(dead, retries=2, timeout_s=5)
    down._dimension = encoder.dimension  # skip connect(): go straight to inference
    from tritonclient.grpc.aio import InferenceServerClient

    down._client = InferenceServerClient(dead)
    try:
        with pytest.raises(EncoderUnavailableError, match="after 3 attempt"):
            await down.encode(["nobody is listening"])
        assert down.stats.requests == 3  # one try and two retries
    finally:
        await down.close()
        await encoder.close()
