"""The catalogue handed to the refit worker through a file in the data directory, not the pipe.

Pickled into the pipe, the catalogue's vectors were copied twice in the serving process on the
way (the array's bytes, then the pickle's buffer): at a million items 1.5 GB became 4.5 GB or more
next to the item cache. `np.save` writes the rows from the array itself and the worker reads
them back in one allocation. Ids and titles still go by pipe (tens of MB at a million items).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from driftwise.model.refit import Refitted, refit
from driftwise.model.tuning import Catalogue

FILE_PATTERN = "refit-catalogue-*.npy"


@dataclass(frozen=True)
class CatalogueFile:
    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    path: Path

    @classmethod
    def write(cls, catalogue: Catalogue, directory: Path) -> CatalogueFile:
        path = directory / FILE_PATTERN.replace("*", uuid.uuid4().hex)  # one per refit in flight
        np.save(path, catalogue.vectors, allow_pickle=False)
        return cls(catalogue.item_ids, catalogue.titles, path)

    def read(self) -> Catalogue:
        return Catalogue(self.item_ids, np.load(self.path, allow_pickle=False), self.titles)


def refit_from_file(catalogue: CatalogueFile, *arguments: Any) -> Refitted:
    """`refit` in the worker process, on the catalogue read back from its file."""
    return refit(catalogue.read(), *arguments)


def remove_leftovers(directory: Path) -> None:
    """Files of refits a crash interrupted (each is the whole catalogue's vectors)."""
    for path in directory.glob(FILE_PATTERN):
        path.unlink(missing_ok=True)
