"""The real Triton server (nvidia-pytriton's binary) serving ``model_repository/`` on loopback.

Checks that the ``text_encoder`` model served by Triton gives the same embeddings as the
in-process reference, and how :class:`LocalTritonServer` and :class:`TritonTextEncoder` behave
when things go wrong (bad requests, a broken or hanging model, a stopped server).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from driftwise.inference.encoder import EncoderUnavailableError, TextEncoder, TritonTextEncoder
from driftwise.inference.in_process_encoder import InProcessTextEncoder
from driftwise.inference.triton_server import LocalTritonServer, TritonStartError

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
DIMENSION = 384

_BASE_TEXTS = [
    "Toy Story (1995) Adventure|Animation|Children|Comedy|Fantasy",
    "Jumanji (1995) Adventure|Children|Fantasy",
    "Heat (1995) Action|Crime|Thriller",
    "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001) Comedy|Romance",
    "千と千尋の神隠し (Spirited Away, 2001) Animation|Fantasy",
    "Крёстный отец (The Godfather, 1972) Crime|Drama",
    "Ñandú — naïve café façade, déjà vu 🎬🍿",
    "",
    " ",
    "?",
    "a space opera with rebels, an evil empire and a farm boy who becomes a knight",
    "word " * 400,  # longer than max_tokens: truncated, not rejected
]


def _mixed_texts(count: int = 70) -> list[str]:
    texts = list(_BASE_TEXTS)
    genres = ["Drama", "Comedy", "Horror|Thriller", "Documentary", "Sci-Fi|Action", "Romance"]
    i = 0
    while len(texts) < count:
        texts.append(f"Movie number {i} ({1950 + i % 70}) {genres[i % len(genres)]}")
        i += 1
    return texts


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


@pytest.fixture(scope="module")
def triton_server() -> Iterator[LocalTritonServer]:
    server = LocalTritonServer(REPOSITORY, models=["text_encoder"], startup_timeout_s=180.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def triton_encoder(triton_server: LocalTritonServer) -> AsyncIterator[TritonTextEncoder]:
    encoder = TritonTextEncoder(triton_server.grpc_url, timeout_s=60.0)
    await encoder.connect()
    try:
        yield encoder
    finally:
        await encoder.close()


@pytest.fixture(scope="module")
async def reference_encoder() -> AsyncIterator[InProcessTextEncoder]:
    encoder = InProcessTextEncoder()
    try:
        yield encoder
    finally:
        await encoder.close()


async def test_both_encoders_satisfy_the_protocol(
    triton_encoder: TritonTextEncoder, reference_encoder: InProcessTextEncoder
) -> None:
    assert isinstance(triton_encoder, TextEncoder)
    assert isinstance(reference_encoder, TextEncoder)
    assert triton_encoder.dimension == reference_encoder.dimension == DIMENSION
    assert triton_encoder.max_batch_size == 64


async def test_triton_matches_in_process_reference(
    triton_encoder: TritonTextEncoder, reference_encoder: InProcessTextEncoder
) -> None:
    texts = _mixed_texts(70)  # more than one 64-text chunk
    served = await triton_encoder.encode(texts)
    reference = await reference_encoder.encode(texts)

    assert served.shape == reference.shape == (len(texts), DIMENSION)
    assert served.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    cosine = _cosine_rows(served, reference)
    assert cosine.min() >= 0.9999, f"worst row {int(cosine.argmin())}: {cosine.min()}"


async def test_order_is_preserved_across_concurrent_chunks(
    triton_server: LocalTritonServer, reference_encoder: InProcessTextEncoder
) -> None:
    texts = _mixed_texts(70)
    encoder = TritonTextEncoder(triton_server.grpc_url, max_batch_size=8, max_in_flight=4)
    try:
        forward = await encoder.encode(texts)  # 9 chunks, 4 in flight
        backward = await encoder.encode(texts[::-1])
    finally:
        await encoder.close()
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
    reference = await reference_encoder.encode(texts)
    assert _cosine_rows(forward, reference).min() >= 0.9999
    # Distinct texts give distinct rows, so a permutation would have been caught above.
    assert not np.allclose(forward[0], forward[1])


async def test_concurrent_callers_are_batched_and_answered_correctly(
    triton_encoder: TritonTextEncoder, reference_encoder: InProcessTextEncoder
) -> None:
    texts = _mixed_texts(40)
    singles = await asyncio.gather(*(triton_encoder.encode([t]) for t in texts))
    served = np.concatenate(singles, axis=0)
    reference = await reference_encoder.encode(texts)
    assert _cosine_rows(served, reference).min() >= 0.9999


async def test_empty_input_gives_empty_matrix(triton_encoder: TritonTextEncoder) -> None:
    empty = await triton_encoder.encode([])
    assert empty.shape == (0, DIMENSION)
    assert empty.dtype == np.float32


async def test_semantically_close_texts_score_higher(triton_encoder: TritonTextEncoder) -> None:
    anchor, close, unrelated = await triton_encoder.encode(
        [
            "A cat is sitting on the mat.",
            "A kitten rests on a rug.",
            "The quarterly tax filing deadline is in April.",
        ]
    )
    assert float(anchor @ close) > float(anchor @ unrelated) + 0.2

    toy_story, toy_story_2, heat = await triton_encoder.encode(
        [
            "Toy Story (1995) Adventure|Animation|Children|Comedy|Fantasy",
            "Toy Story 2 (1999) Adventure|Animation|Children|Comedy|Fantasy",
            "Heat (1995) Action|Crime|Thriller",
        ]
    )
    assert float(toy_story @ toy_story_2) > float(toy_story @ heat)


async def test_a_bad_request_fails_alone(triton_server: LocalTritonServer) -> None:
    """A non-UTF-8 request gets its own error; requests batched with it still succeed."""
    from tritonclient.grpc import InferInput
    from tritonclient.grpc.aio import InferenceServerClient
    from tritonclient.utils import InferenceServerException

    def request(values: list[bytes]) -> list[InferInput]:
        tensor = InferInput("TEXT", [len(values), 1], "BYTES")
        tensor.set_data_from_numpy(np.array(values, dtype=np.object_).reshape(-1, 1))
        return [tensor]

    client = InferenceServerClient(triton_server.grpc_url)
    try:
        calls = [
            client.infer("text_encoder", request([b"good one"]), client_timeout=60.0),
            client.infer("text_encoder", request([b"\xff\xfe broken"]), client_timeout=60.0),
            client.infer("text_encoder", request([b"good two", b"three"]), client_timeout=60.0),
        ]
        good1, bad, good2 = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()

    assert isinstance(bad, InferenceServerException)
    assert "UTF-8" in str(bad)
    assert not isinstance(good1, BaseException) and not isinstance(good2, BaseException)
    assert good1.as_numpy("EMBEDDING").shape == (1, DIMENSION)
    assert good2.as_numpy("EMBEDDING").shape == (2, DIMENSION)


async def test_stopped_server_raises_unavailable_quickly() -> None:
    """Uses its own server, so the shared one stays up for the other tests."""
    server = LocalTritonServer(REPOSITORY, models=["text_encoder"], startup_timeout_s=180.0)
    server.start()
    pid = server.pid
    assert pid is not None
    encoder = TritonTextEncoder(server.grpc_url, timeout_s=10.0, retries=2)
    try:
        await encoder.connect()
        assert (await encoder.encode(["still up"])).shape == (1, DIMENSION)

        server.stop()
        assert server.pid is None and not server.is_running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the server process is gone (and reaped)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # and so are its python stubs (same process group)
        server.stop()  # idempotent

        started = time.monotonic()
        with pytest.raises(EncoderUnavailableError):
            await encoder.encode(["server is gone"])
        assert time.monotonic() - started < 5.0

        fresh = TritonTextEncoder(server.grpc_url, timeout_s=2.0)
        try:
            with pytest.raises(EncoderUnavailableError):
                await fresh.connect()
        finally:
            await fresh.close()
    finally:
        await encoder.close()
        server.stop()


def _write_model(repository: Path, initialize_body: str) -> None:
    model_dir = repository / "broken"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [ { name: "X" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]\n',
        encoding="utf-8",
    )
    (model_dir / "1" / "model.py").write_text(
        "import time\n\n"
        "class TritonPythonModel:\n"
        "    def initialize(self, args):\n"
        f"        {initialize_body}\n\n"
        "    def execute(self, requests):\n"
        "        return []\n",
        encoding="utf-8",
    )


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (the server and its python stubs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_model_that_fails_to_load_raises_start_error(tmp_path: Path) -> None:
    _write_model(tmp_path, "raise RuntimeError('deliberately broken model')")
    server = LocalTritonServer(tmp_path, startup_timeout_s=60.0, log_path=tmp_path / "t.log")
    with pytest.raises(TritonStartError, match="deliberately broken model"):
        server.start()
    assert server.pid is None
    assert _processes_mentioning(str(tmp_path)) == []


def test_model_that_hangs_at_load_times_out_and_is_killed(tmp_path: Path) -> None:
    _write_model(tmp_path, "time.sleep(3600)")
    server = LocalTritonServer(tmp_path, startup_timeout_s=5.0, log_path=tmp_path / "t.log")
    started = time.monotonic()
    with pytest.raises(TritonStartError, match="not ready after"):
        server.start()
    assert time.monotonic() - started < 30.0
    assert server.pid is None and not server.is_running
    assert _processes_mentioning(str(tmp_path)) == []  # the hanging stub was killed too
