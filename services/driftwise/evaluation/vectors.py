"""Encoder vectors of MovieLens items, computed in process and cached on disk: the benchmarks'
synthetic catalogues (bench/serving.py, bench/load.py) are built from them without a Triton.

The model is the serving encoder's (all-MiniLM-L6-v2) on the text serving encodes
(``NewItem.text``); the cache is keyed by a hash of the texts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from driftwise.datasets.movielens import Movie

Report = Callable[[str], None]


def item_vectors(movies: Sequence[Movie], cache_dir: Path, report: Report) -> npt.NDArray[np.float32]:
    """Encoder vectors of the items' serving texts, cached by a hash of the texts."""
    from driftwise.engine import NewItem

    texts = [NewItem(m.item_id, m.title, tags=m.tags).text() for m in movies]
    key = hashlib.sha256("\n".join(["all-MiniLM-L6-v2", *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"item-vectors-{key}.npy"
    from driftwise_triton.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder(num_threads=os.cpu_count() or 1)
    if path.exists():
        cached: npt.NDArray[np.float32] = np.load(path)
        # the key covers the texts, not the encoder: re-encode a sample so a cache written by
        # other weights or code is never used silently
        sample = np.random.default_rng(0).choice(len(texts), size=min(16, len(texts)), replace=False)
        fresh = embedder.embed([texts[i] for i in sample])
        if cached.shape == (len(texts), fresh.shape[1]) and np.allclose(cached[sample], fresh, atol=1e-4):
            return cached
        report(f"stale item-vector cache {path}: encoding again")
    report(f"encoding {len(texts)} item texts (cached in {path} afterwards) ...")
    vectors = np.concatenate([embedder.embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
