"""The benchmarks' cache of item vectors (driftwise.evaluation.vectors)."""

from pathlib import Path

import numpy as np

GENRES = ("Western", "Horror", "Musical", "Documentary")


def test_a_stale_item_vector_cache_is_encoded_again(tmp_path: Path) -> None:
    from driftwise.datasets.movielens import Movie
    from driftwise.evaluation.vectors import item_vectors

    movies = [Movie(str(i), f"{g} story (1990)", (g,), None) for i, g in enumerate(GENRES)]
    fresh = item_vectors(movies, tmp_path, lambda _: None)
    (cache,) = tmp_path.glob("item-vectors-*.npy")
    np.save(cache, np.random.default_rng(1).normal(size=fresh.shape).astype(np.float32))
    messages: list[str] = []
    again = item_vectors(movies, tmp_path, messages.append)
    np.testing.assert_allclose(again, fresh, atol=1e-5)
    assert any("stale" in m for m in messages)
    np.testing.assert_allclose(np.load(cache), fresh, atol=1e-5)  # the cache was mended
