"""Sentence embeddings with ONNX Runtime from an exported MiniLM graph.

The graph is written by ``scripts/export_onnx.py``: inputs ``input_ids`` and ``attention_mask``
(int64, ``[batch, sequence]``), output the mean-pooled, L2-normalised embedding
(float32, ``[batch, dim]``); pooling and normalisation are inside the graph. Tokenisation,
length sorting and grouping are :class:`driftwise_triton.minilm.TokenBatcher`, the same code
:class:`~driftwise_triton.minilm.MiniLMEmbedder` uses, so both runtimes see the same batches.

Used by the Triton models ``text_encoder_onnx`` and ``text_encoder_onnx_int8`` (through
:mod:`driftwise_triton.triton_model`). Runs on the CPU execution provider only.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwise.inference.texts import validate_texts
from driftwise_triton.minilm import (
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    TokenBatcher,
    default_weights_path,
)

__all__ = ["INPUT_NAMES", "OUTPUT_NAME", "OnnxEmbedder"]

#: Graph inputs, in this order, as written by ``scripts/export_onnx.py``.
INPUT_NAMES = ("input_ids", "attention_mask")
#: Graph output: the normalised embedding.
OUTPUT_NAME = "embedding"


def _onnxruntime() -> Any:
    # onnxruntime ships no type information; imported here so that importing this module is cheap.
    return importlib.import_module("onnxruntime")


class OnnxEmbedder:
    """Sentence embeddings from an exported MiniLM ONNX graph (fp32 or int8).

    Args:
        model_path: the ``.onnx`` file.
        tokenizer_path: local Hugging Face folder with the tokenizer files and ``config.json``;
            ``None`` = the MiniLM weights folder (:func:`~driftwise_triton.minilm.default_weights_path`).
        max_tokens: truncation length in word pieces (clamped to the model's position limit).
        num_threads: ONNX Runtime intra-op threads for this session (inter-op is 1).
        max_batch_tokens: upper bound on padded tokens (texts x longest) per ``run``.

    ONNX Runtime sessions may be run concurrently, but callers should serialise :meth:`embed`
    anyway: with ``num_threads`` threads per call, concurrency only oversubscribes the cores.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        tokenizer_path: str | Path | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        num_threads: int = 1,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ONNX model not found: {path} (it is generated: run scripts/export_onnx.py)"
            )
        folder = Path(tokenizer_path) if tokenizer_path else default_weights_path()
        self._batcher = TokenBatcher(folder, max_tokens=max_tokens, max_batch_tokens=max_batch_tokens)
        self._path = path
        self._num_threads = num_threads

        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

        inputs = tuple(str(node.name) for node in self._session.get_inputs())
        outputs = {str(node.name): node for node in self._session.get_outputs()}
        if sorted(inputs) != sorted(INPUT_NAMES) or OUTPUT_NAME not in outputs:
            raise ValueError(
                f"{path}: expected inputs {list(INPUT_NAMES)} and output {OUTPUT_NAME!r}, got inputs "
                f"{list(inputs)} and outputs {list(outputs)} (export it with scripts/export_onnx.py)"
            )
        last = outputs[OUTPUT_NAME].shape[-1]
        hidden = self._batcher.model_config.get("hidden_size")
        if isinstance(last, int):
            self._dimension = last
        elif isinstance(hidden, int):
            self._dimension = hidden
        else:
            shape = outputs[OUTPUT_NAME].shape
            raise ValueError(f"{path}: cannot tell the embedding size (output shape {shape})")

    @property
    def dimension(self) -> int:
        """Length of each embedding (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Truncation length in word pieces, special tokens included."""
        return self._batcher.max_tokens

    @property
    def model_path(self) -> Path:
        """The ``.onnx`` file this session runs."""
        return self._path

    @property
    def tokenizer_path(self) -> Path:
        """The folder the tokenizer was read from."""
        return self._batcher.path

    @property
    def num_threads(self) -> int:
        """ONNX Runtime intra-op threads."""
        return self._num_threads

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: a C-contiguous ``(len(texts), dimension)`` float32 array, rows
        L2-normalised and in the order of ``texts``; an empty input gives ``(0, dimension)``.

        Batching is the same as ``MiniLMEmbedder.embed``: tokenised once, sorted by length, at
        most ``max_batch_tokens`` padded tokens per run.
        """
        batch = validate_texts(texts)
        result = np.zeros((len(batch), self._dimension), dtype=np.float32)
        for group in self._batcher.batches(batch):
            feeds = {"input_ids": group.input_ids, "attention_mask": group.attention_mask}
            result[group.rows] = self._session.run([OUTPUT_NAME], feeds)[0]
        return result
