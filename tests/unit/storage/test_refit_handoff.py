"""The refit worker's catalogue goes through a file in the data directory (`refit_handoff`)."""

import pickle
from pathlib import Path

import numpy as np

from driftwise.model.tuning import Catalogue
from driftwise.storage.refit_handoff import CatalogueFile, remove_leftovers


def test_the_file_gives_back_the_catalogue_and_only_ids_and_titles_are_pickled(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    catalogue = Catalogue(tuple(f"i{n:03d}" for n in range(500)), vectors, tuple(f"t{n}" for n in range(500)))
    spilled = CatalogueFile.write(catalogue, tmp_path)
    assert spilled.path.parent == tmp_path and spilled.path.exists()
    # what crosses the pipe: no vectors (a pickled 500 x 16 float32 matrix alone is 32 kB)
    assert len(pickle.dumps(spilled)) < 20_000
    back = pickle.loads(pickle.dumps(spilled)).read()
    assert back.item_ids == catalogue.item_ids and back.titles == catalogue.titles
    assert back.vectors.dtype == np.float32 and np.array_equal(back.vectors, vectors)
    assert back.vectors.flags.writeable  # its own array, not a read-only view of the file
    # two refits in flight do not share a file
    assert CatalogueFile.write(catalogue, tmp_path).path != spilled.path


def test_files_a_crash_left_are_removed_and_nothing_else(tmp_path: Path) -> None:
    catalogue = Catalogue(("a",), np.ones((1, 4), dtype=np.float32), ("A",))
    left = [CatalogueFile.write(catalogue, tmp_path).path for _ in range(2)]
    kept = tmp_path / "learned-fit.pickle"
    kept.write_bytes(b"x")
    remove_leftovers(tmp_path)
    assert not any(p.exists() for p in left) and kept.exists()
