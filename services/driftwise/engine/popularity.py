"""Item popularity in memory: positive events per item, in step with the log's item_stats (each
append returns what it added); every Recommend scales its candidates' popularity by it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from driftwise.model.ranking import Candidate
from driftwise.storage.vector_store import UNKNOWN_TIME, StoredItem


class Popularity:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._top = 0

    @property
    def counts(self) -> Mapping[str, int]:
        """Positive events per item, as every Recommend reads it."""
        return self._counts

    def add(self, added: Counter[str]) -> None:
        self._counts.update(added)
        self._top = max(self._top, *(self._counts[i] for i in added), 0)

    def remove(self, removed: Counter[str]) -> None:
        if removed:
            self._counts.subtract(removed)
            self._counts = +self._counts  # drops the items at zero
            self._top = max(self._counts.values(), default=0)

    def candidates(self, items: dict[str, StoredItem]) -> list[Candidate]:
        """The items as ranking candidates, with popularity log-scaled to [0, 1] by the top item."""
        counts, top = self._counts, self._top
        scale = math.log1p(top) if top > 0 else 1.0
        return [
            Candidate(
                item_id,
                item.vector,  # float32: ranking stacks and converts all candidates at once
                math.log1p(counts.get(item_id, 0)) / scale,
                None if item.create_time == UNKNOWN_TIME else float(item.create_time),
            )
            for item_id, item in items.items()
        ]
