"""The catalogue a refit fits on, gathered from the store's scan batches (`gathered_catalogue`)."""

import numpy as np

from driftwise.engine.learned_models import catalogue_of, gathered_catalogue
from driftwise.storage.vector_store import StoredItem


def test_batches_become_one_catalogue_sorted_by_id_with_unit_rows() -> None:
    rng = np.random.default_rng(2)
    names = [f"item-{n:03d}" for n in rng.permutation(300)]
    vectors = rng.normal(size=(300, 8)).astype(np.float32) * 3
    items = [StoredItem(name, f"title of {name}", "c", 0, vectors[i]) for i, name in enumerate(names)]
    blocks = [vectors[start : start + 128] for start in range(0, 300, 128)]  # scan batches: 128, 128, 44

    catalogue = gathered_catalogue(list(names), [i.title for i in items], blocks, 8)

    assert list(catalogue.item_ids) == sorted(names)
    assert catalogue.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(catalogue.vectors, axis=1), 1.0, atol=1e-6)
    for row, item_id in enumerate(catalogue.item_ids):
        source = vectors[names.index(item_id)]
        assert np.allclose(catalogue.vectors[row], source / np.linalg.norm(source), atol=1e-6)
        assert catalogue.titles[row] == f"title of {item_id}"
    # the same as from the items themselves (the quick refit's way)
    whole = catalogue_of(items, 8)
    assert whole.item_ids == catalogue.item_ids
    assert np.array_equal(whole.vectors, catalogue.vectors)


def test_an_empty_store_gives_an_empty_catalogue() -> None:
    catalogue = gathered_catalogue([], [], [], 8)
    assert catalogue.item_ids == () and catalogue.vectors.shape == (0, 8)
