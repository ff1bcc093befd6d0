"""Text encoders: text -> L2-normalised float32 embeddings.

Two implementations behind one small interface (:class:`TextEncoder`):

* :class:`TritonTextEncoder` calls the ``text_encoder`` model on a Triton server (local or
  remote) over gRPC with ``tritonclient.grpc.aio``;
* :class:`~driftwise.inference.in_process_encoder.InProcessTextEncoder` runs the same
  :class:`~driftwise_triton.minilm.MiniLMEmbedder` in this process, in a worker thread (the
  reference the Triton path is tested against).

Failures to reach the encoder are reported as :class:`EncoderUnavailableError`, which the gRPC
services map to ``UNAVAILABLE``. This module imports no servicer and no Milvus code.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from opentelemetry import trace

from driftwise.inference.texts import utf8, validate_texts
from driftwise.observability.tracing import client_span, trace_headers

if TYPE_CHECKING:
    import grpc

__all__ = [
    "EncoderUnavailableError",
    "TextEncoder",
    "TritonTextEncoder",
]

_log = logging.getLogger(__name__)

_INPUT = "TEXT"
_OUTPUT = "EMBEDDING"
_RETRYABLE_STATUS = "StatusCode.UNAVAILABLE"
_BACKOFF_BASE_S = 0.1
_BACKOFF_MAX_S = 2.0
# gRPC's reconnect backoff grows to 120 s by default: after an outage of a minute the channel could
# stay down for minutes after Triton is back. Capped at 1 s, the encoder works again within about
# a second of Triton's return (the supervised local Triton comes back on the same port).
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),  # tritonclient's defaults
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

Embeddings = npt.NDArray[np.float32]
TextRole = Literal["query", "passage"]


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

    async def encode(self, texts: Sequence[str], role: TextRole = "passage") -> Embeddings:
        """``(len(texts), dimension)`` float32, rows L2-normalised, in the order of ``texts``;
        an empty input gives ``(0, dimension)``. ``role`` says whether the texts are queries
        (what a user searches or writes) or passages (item texts), for models that embed the
        two differently."""
        ...

    async def close(self) -> None:
        """Release connections / threads. The encoder is unusable afterwards."""
        ...


@dataclass
class EncoderStats:
    """Counters of a TritonTextEncoder, for metrics and benchmarks."""

    texts: int = 0  # texts asked for
    cache_hits: int = 0  # answered from the LRU cache
    coalesced: int = 0  # answered by a request already queued or in flight for the same text
    requests: int = 0  # inference requests sent to Triton
    sent_texts: int = 0  # texts in those requests
    batch_sizes: Counter[int] = field(default_factory=Counter)  # texts per request -> requests

    @property
    def mean_batch(self) -> float:
        return self.sent_texts / self.requests if self.requests else 0.0


class TritonTextEncoder:
    """:class:`TextEncoder` backed by a Triton model over gRPC (``tritonclient.grpc.aio``).

    Concurrent ``encode`` calls are coalesced: their texts join one queue, flushed after
    ``batch_window_s`` (or at once when a full batch is waiting) into requests of at most
    ``max_batch_size`` texts, at most ``max_in_flight`` of them at a time. A text already queued
    or in flight is not sent twice, and an LRU cache keyed by (model, role, text) answers
    repeated texts without a request. Each request has a deadline; only ``UNAVAILABLE`` is
    retried, with exponential backoff and jitter; any failure becomes
    :class:`EncoderUnavailableError` for every caller waiting on that request.

    Models that need role prefixes (e5: "query: " / "passage: ") declare them as config
    parameters ``query_prefix`` / ``passage_prefix``; :meth:`connect` reads them.
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
        cache_size: int = 10_000,
        batch_window_s: float = 0.001,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if cache_size < 0 or batch_window_s < 0:
            raise ValueError("cache_size and batch_window_s must be >= 0")
        self._url = url
        self._credentials = credentials  # None: plaintext (the local Triton on loopback)
        self._channel_args = [*_CHANNEL_ARGS, *channel_options]
        self._model_name = model_name
        self._timeout_s = timeout_s
        self._max_batch_size = max_batch_size
        self._retries = retries
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._cache_size = cache_size
        self._batch_window_s = batch_window_s
        self._client: Any = None
        self._connect_lock = asyncio.Lock()
        self._dimension: int | None = None
        self._prefixes: dict[TextRole, str] = {"query": "", "passage": ""}
        self._closed = False
        self._cache: OrderedDict[str, Embeddings] = OrderedDict()  # sent text -> (d,) vector
        self._waiting: dict[str, asyncio.Future[Embeddings]] = {}  # queued or in flight
        self._askers: dict[str, trace.SpanContext] = {}  # queued text -> the span that asked first
        self._queue: list[str] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self.stats = EncoderStats()
        self.last_failure = ""  # why the last request failed; "" once one succeeds again

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
        """Check that the model is ready and read its metadata/config (dimension, batch size,
        role prefixes). Raises :class:`EncoderUnavailableError` if it is not ready."""
        if self._closed:
            raise RuntimeError("encoder is closed")
        from tritonclient.grpc.aio import InferenceServerClient
        from tritonclient.utils import InferenceServerException

        if self._client is None:
            # creds: TLS (mutual when they hold a client certificate); a refused handshake is
            # UNAVAILABLE, like a Triton that is down
            self._client = InferenceServerClient(
                self._url, creds=self._credentials, channel_args=self._channel_args
            )
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
        model_config = config.get("config", {})
        model_max_batch = int(model_config.get("max_batch_size", 0))
        if model_max_batch > 0:
            self._max_batch_size = min(self._max_batch_size, model_max_batch)
        parameters = model_config.get("parameters", {})
        for role in ("query", "passage"):
            self._prefixes[role] = parameters.get(f"{role}_prefix", {}).get("string_value", "")

    async def encode(self, texts: Sequence[str], role: TextRole = "passage") -> Embeddings:
        batch = validate_texts(texts)
        if self._closed:
            raise RuntimeError("encoder is closed")
        if self._dimension is None:
            async with self._connect_lock:  # concurrent first calls connect once
                if self._dimension is None:
                    await self.connect()
        result = np.zeros((len(batch), self.dimension), dtype=np.float32)
        pending: dict[int, asyncio.Future[Embeddings]] = {}
        prefix = self._prefixes[role]
        self.stats.texts += len(batch)
        for i, text in enumerate(batch):
            sent = prefix + text
            cached = self._cache.get(sent)
            if cached is not None:
                self._cache.move_to_end(sent)
                self.stats.cache_hits += 1
                result[i] = cached
            elif sent in self._waiting:
                self.stats.coalesced += 1
                pending[i] = self._waiting[sent]
            else:
                pending[i] = self._enqueue(sent)
        if pending:
            # wait() does not cancel the shared futures if this caller is cancelled
            await asyncio.wait(set(pending.values()))
            for i, future in pending.items():
                result[i] = future.result()  # raises EncoderUnavailableError on failure
        return result

    def _enqueue(self, sent: str) -> asyncio.Future[Embeddings]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Embeddings] = loop.create_future()
        self._waiting[sent] = future
        self._askers[sent] = trace.get_current_span().get_span_context()
        self._queue.append(sent)
        if len(self._queue) >= self._max_batch_size:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(self._batch_window_s, self._flush)
        return future

    def _flush(self) -> None:
        """Send everything queued, in requests of at most max_batch_size texts."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        while self._queue:
            chunk, self._queue = self._queue[: self._max_batch_size], self._queue[self._max_batch_size :]
            task = asyncio.get_running_loop().create_task(self._request(chunk))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _request(self, chunk: list[str]) -> None:
        try:
            embeddings = await self._infer(chunk)
        except Exception as exc:
            error = exc if isinstance(exc, EncoderUnavailableError) else EncoderUnavailableError(repr(exc))
            self.last_failure = str(error)
            for sent in chunk:
                future = self._waiting.pop(sent, None)
                if future is not None and not future.done():
                    future.set_exception(error)
                    future.exception()  # marks it retrieved: a caller that went away is not an error
            return
        self.last_failure = ""
        for sent, vector in zip(chunk, embeddings, strict=True):
            if self._cache_size:
                self._cache[sent] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            future = self._waiting.pop(sent, None)
            if future is not None and not future.done():
                future.set_result(vector)

    async def _infer(self, chunk: list[str]) -> Embeddings:
        data = np.array([utf8(text) for text in chunk], dtype=np.object_).reshape(-1, 1)
        # a request serves every caller whose text is in it: its span (a child of the caller
        # that flushed it) links to the others' spans
        askers = {
            (c.trace_id, c.span_id): c
            for text in chunk
            if (c := self._askers.pop(text, None)) is not None and c.is_valid
        }
        with client_span(
            "triton.infer",
            "triton",
            {"triton.model": self._model_name, "triton.batch_size": len(chunk)},
            links=[trace.Link(c) for c in askers.values()],
        ):
            return await self._infer_with_retries(chunk, data)

    async def _infer_with_retries(self, chunk: list[str], data: npt.NDArray[np.object_]) -> Embeddings:
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.utils import InferenceServerException

        attempt = 0
        while True:
            infer_input = InferInput(_INPUT, list(data.shape), "BYTES")
            infer_input.set_data_from_numpy(data)
            try:
                async with self._in_flight:
                    self.stats.requests += 1
                    self.stats.sent_texts += len(chunk)
                    self.stats.batch_sizes[len(chunk)] += 1
                    response = await self._client.infer(
                        self._model_name,
                        [infer_input],
                        outputs=[InferRequestedOutput(_OUTPUT)],
                        client_timeout=self._timeout_s,
                        headers=trace_headers(),  # Triton continues the trace
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
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for task in list(self._requests):
            task.cancel()
        for future in self._waiting.values():  # queued or in flight: nobody will answer them now
            if not future.done():
                future.set_exception(EncoderUnavailableError("encoder closed"))
                future.exception()
        self._waiting.clear()
        self._queue = []
        client, self._client = self._client, None
        if client is not None:
            await client.close()
