#!/usr/bin/env python3
"""Export the shipped all-MiniLM-L6-v2 weights to ONNX for the ONNX Runtime Triton models.

Writes (generated artefacts, git-ignored, never committed):

* ``model_repository/text_encoder_onnx/1/model.onnx``: fp32;
* ``model_repository/text_encoder_onnx_int8/1/model.onnx``: int8 weights, from the fp32 graph
  by ``onnxruntime.quantization.quantize_dynamic(weight_type=QInt8, per_channel=True,
  reduce_range=True)`` (other int8 recipes lost accuracy badly on MiniLM).

The graph takes ``input_ids`` and ``attention_mask`` (int64, ``[batch, sequence]``, both axes
dynamic) and returns ``embedding`` (float32, ``[batch, 384]``): mean pooling and L2
normalisation are inside the graph, using the same :func:`driftwise_triton.minilm.mean_pool_normalise`
as the torch path. Exported with the TorchScript exporter (``dynamo=False``).

Idempotent: each file carries a fingerprint (this script, ``minilm.py``, the weights, the tool
versions) in its ONNX metadata; files whose fingerprint matches are left alone unless ``--force``.
After an export, each variant is checked against torch fp32 on MovieLens texts (cosine, speed,
single thread). Exit status 1 if a variant is less accurate than ``--min-cosine-*``.

    python scripts/export_onnx.py [--force] [--check] [--texts 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPOSITORY = REPO_ROOT / "model_repository"
DEFAULT_MOVIES = REPO_ROOT / "data" / "ml-latest-small"
FP32_MODEL = "text_encoder_onnx"
INT8_MODEL = "text_encoder_onnx_int8"
MODEL_FILE = Path("1") / "model.onnx"
OPSET = 17
METADATA_KEY = "driftwise.export"
# Bump when the export recipe changes in a way the fingerprinted inputs do not show.
RECIPE = "minilm-meanpool-l2/v1"
INT8_RECIPE = "quantize_dynamic(weight_type=QInt8, per_channel=True, reduce_range=True)"


@dataclass(frozen=True)
class Variant:
    name: str  # the Triton model folder
    path: Path
    fingerprint: str
    min_cosine: float


def _log(message: str) -> None:
    print(message, flush=True)


def _sha256_files(paths: Sequence[Path], extra: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    for item in extra:
        digest.update(item.encode())
    return digest.hexdigest()


def _fingerprint(weights: Path, recipe: str) -> str:
    import onnx
    import onnxruntime
    import torch
    import transformers

    from driftwise_triton import minilm

    sources = [Path(__file__).resolve(), Path(minilm.__file__).resolve()]
    weight_files = sorted(
        p for p in weights.iterdir() if p.is_file() and p.suffix in {".json", ".safetensors", ".txt", ".bin"}
    )
    versions = [torch.__version__, transformers.__version__, onnx.__version__, onnxruntime.__version__]
    return _sha256_files([*sources, *weight_files], [recipe, str(OPSET), *versions])


def _stored_fingerprint(path: Path) -> str | None:
    import onnx

    if not path.is_file():
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a truncated or foreign file: export again
        return None
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            try:
                value = json.loads(entry.value).get("fingerprint")
            except json.JSONDecodeError:
                return None
            return str(value) if value else None
    return None


def _stamp(source: Path, target: Path, info: dict[str, str]) -> None:
    """Copy ``source`` to ``target`` atomically with ``info`` in the ONNX metadata."""
    import onnx

    model = onnx.load(str(source))
    kept = [entry for entry in model.metadata_props if entry.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info, sort_keys=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial" + target.suffix)
    try:
        onnx.save(model, str(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _export_fp32(weights: Path, target: Path) -> None:
    """Trace MiniLM + pooling + normalisation with the TorchScript exporter into ``target``."""
    import torch
    from transformers import AutoModel

    from driftwise_triton.minilm import TokenBatcher, mean_pool_normalise

    class PooledEncoder(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # An additive [batch, 1, 1, sequence] mask: transformers uses a 4-D mask as given,
            # whereas building one from the 2-D mask bakes the example's length into the trace.
            keep = attention_mask[:, None, None, :].to(torch.float32)
            additive = (1.0 - keep) * torch.finfo(torch.float32).min
            output = self.encoder(
                input_ids=input_ids,
                attention_mask=additive,
                token_type_ids=torch.zeros_like(input_ids),
            )
            return mean_pool_normalise(output.last_hidden_state, attention_mask)

    encoder = AutoModel.from_pretrained(str(weights), local_files_only=True, attn_implementation="eager")
    encoder.eval()
    wrapper = PooledEncoder(encoder).eval()
    # Example of two different lengths, so padding is present while tracing.
    example = next(TokenBatcher(weights).batches(["a short one", "a somewhat longer example text"]))
    args = (torch.from_numpy(example.input_ids), torch.from_numpy(example.attention_mask))
    dynamic = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode():
        # The legacy exporter is chosen on purpose; its deprecation and tracer notes are noise
        # (the result is checked against torch after the export).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            args,
            str(target),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_input=str(source),
        model_output=str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
    )


def sample_texts(movies_dir: Path, count: int) -> list[str]:
    """``count`` item texts spread over the MovieLens catalogue (title. genres, tags), plus a few
    edge cases (empty, non-Latin, longer than 256 word pieces)."""
    from driftwise.datasets.movielens import load_movies

    movies = load_movies(movies_dir)
    edge = ["", "Ñandú — naïve café façade 🎬", "千と千尋の神隠し (2001)", "word " * 400]
    step = max(1, len(movies) // max(1, count - len(edge)))
    texts = [". ".join(p for p in (m.title, ", ".join(m.tags)) if p) for m in movies[::step]]
    return (texts[: max(0, count - len(edge))] + edge)[:count]


def _rate(
    embed: Callable[[list[str]], npt.NDArray[np.float32]], texts: list[str], batch: int
) -> tuple[npt.NDArray[np.float32], float]:
    """Embeddings of ``texts`` in chunks of ``batch`` and texts per second (after one warm-up)."""
    embed(texts[:batch])
    started = time.perf_counter()
    parts = [embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    elapsed = time.perf_counter() - started
    return np.concatenate(parts, axis=0), len(texts) / elapsed


def evaluate(variants: Sequence[Variant], weights: Path, texts: list[str], batch: int) -> bool:
    """Cosine of each variant against torch fp32 and single-thread speed; True if all pass."""
    import torch

    from driftwise_triton.minilm import MiniLMEmbedder
    from driftwise_triton.onnx_embedder import OnnxEmbedder

    torch.set_num_threads(1)
    reference, torch_rate = _rate(MiniLMEmbedder(weights).embed, texts, batch)
    _log(f"check on {len(texts)} MovieLens texts, batch {batch}, 1 thread:")
    _log(f"  torch fp32              {torch_rate:7.1f} texts/s")
    ok = True
    for variant in variants:
        embedder = OnnxEmbedder(variant.path, tokenizer_path=weights, num_threads=1)
        vectors, rate = _rate(embedder.embed, texts, batch)
        cosine = (vectors.astype(np.float64) * reference.astype(np.float64)).sum(axis=1)
        passed = float(cosine.min()) >= variant.min_cosine
        ok &= passed
        _log(
            f"  {variant.name:<23} {rate:7.1f} texts/s ({rate / torch_rate:.2f}x torch)  cosine vs torch: "
            f"min {cosine.min():.5f} mean {cosine.mean():.5f}  "
            f"{'ok' if passed else f'BELOW {variant.min_cosine}'}"
        )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY, help="Triton model repository")
    parser.add_argument("--weights", type=Path, default=None, help="HF folder (default: the shipped MiniLM)")
    parser.add_argument("--force", action="store_true", help="export even if the files are up to date")
    parser.add_argument(
        "--check", action="store_true", help="compare with torch even when nothing was exported"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with torch")
    parser.add_argument("--movies", type=Path, default=DEFAULT_MOVIES, help="ml-latest-small folder")
    parser.add_argument("--texts", type=int, default=300, help="MovieLens texts in the comparison")
    parser.add_argument("--batch", type=int, default=32, help="texts per call in the comparison")
    parser.add_argument("--min-cosine-fp32", type=float, default=0.9999, help="worst row allowed, fp32")
    parser.add_argument("--min-cosine-int8", type=float, default=0.95, help="worst row allowed, int8")
    args = parser.parse_args(argv)

    sys.path.append(str(REPO_ROOT / "services"))  # an uninstalled checkout works too
    from driftwise_triton.minilm import default_weights_path

    weights = (args.weights or default_weights_path()).resolve()
    repository = args.repository.resolve()
    fp32 = Variant(
        FP32_MODEL, repository / FP32_MODEL / MODEL_FILE, _fingerprint(weights, RECIPE), args.min_cosine_fp32
    )
    int8 = Variant(
        INT8_MODEL,
        repository / INT8_MODEL / MODEL_FILE,
        _fingerprint(weights, f"{RECIPE}+{INT8_RECIPE}"),
        args.min_cosine_int8,
    )
    stale = [v for v in (fp32, int8) if args.force or _stored_fingerprint(v.path) != v.fingerprint]
    if not stale:
        _log(f"up to date: {fp32.path.relative_to(repository)}, {int8.path.relative_to(repository)}")
    else:
        started = time.perf_counter()
        fresh_fp32 = fp32.path.with_name("model.fp32.partial.onnx")
        int8_partial = int8.path.with_name("model.int8.partial.onnx")
        try:
            fp32.path.parent.mkdir(parents=True, exist_ok=True)
            _export_fp32(weights, fresh_fp32)
            exported = time.perf_counter()
            _log(f"exported fp32 graph in {exported - started:.1f} s (opset {OPSET})")
            if fp32 in stale:
                _stamp(fresh_fp32, fp32.path, {"fingerprint": fp32.fingerprint, "variant": "fp32"})
                _log(f"wrote {fp32.path} ({fp32.path.stat().st_size / 1e6:.1f} MB)")
            if int8 in stale:
                int8.path.parent.mkdir(parents=True, exist_ok=True)
                _quantize_int8(fresh_fp32, int8_partial)
                _stamp(
                    int8_partial,
                    int8.path,
                    {"fingerprint": int8.fingerprint, "variant": "int8", "recipe": INT8_RECIPE},
                )
                _log(
                    f"quantized int8 in {time.perf_counter() - exported:.1f} s: wrote {int8.path} "
                    f"({int8.path.stat().st_size / 1e6:.1f} MB)"
                )
        finally:
            fresh_fp32.unlink(missing_ok=True)
            int8_partial.unlink(missing_ok=True)
        _log(f"export done in {time.perf_counter() - started:.1f} s")

    if args.no_check or (not stale and not args.check):
        return 0
    ok = evaluate([fp32, int8], weights, sample_texts(args.movies, args.texts), args.batch)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
