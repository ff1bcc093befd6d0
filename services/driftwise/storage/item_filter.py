"""Which items a request allows, as a Milvus boolean expression (`item_filter`) or as a check on
items already at hand (`ItemFilter.allows`, for candidates that no Milvus search returned)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftwise.storage.vector_store import StoredItem


@dataclass(frozen=True, slots=True)
class Excluded:
    """Item ids left out, with their Milvus clause built once: a user's seen items (hundreds of
    ids) are left out of every Recommend until the profile changes."""

    ids: frozenset[str]
    clause: str  # `item_id not in [...]`, "" for no ids

    @classmethod
    def of(cls, ids: Iterable[str]) -> Excluded:
        ids = frozenset(ids)
        return cls(ids, item_filter(exclude_ids=sorted(ids)))


NOTHING_EXCLUDED = Excluded(frozenset(), "")


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """What a request allows: pushed into Milvus as an expression, or checked on cached items
    (for candidates that do not come from a Milvus search, such as co-occurrence followers)."""

    categories: tuple[str, ...] = ()
    created_after: int | None = None
    created_before: int | None = None
    exclude_ids: frozenset[str] = frozenset()
    also_excluded: Excluded = NOTHING_EXCLUDED  # the seen items, their clause already built

    def expression(self) -> str:
        own = item_filter(
            categories=self.categories,
            created_after=self.created_after,
            created_before=self.created_before,
            exclude_ids=sorted(self.exclude_ids - self.also_excluded.ids),
        )
        return " and ".join(clause for clause in (own, self.also_excluded.clause) if clause)

    def allows(self, item: StoredItem) -> bool:
        return (
            (not self.categories or item.category in self.categories)
            and (self.created_after is None or item.create_time >= self.created_after)
            and (self.created_before is None or item.create_time < self.created_before)
            and item.item_id not in self.exclude_ids
            and item.item_id not in self.also_excluded.ids
        )


def item_filter(
    *,
    categories: Sequence[str] = (),
    created_after: int | None = None,
    created_before: int | None = None,
    include_ids: Sequence[str] = (),
    exclude_ids: Sequence[str] = (),
) -> str:
    """A Milvus boolean expression for the items a request allows ("" allows all)."""
    clauses = []
    if categories:
        clauses.append(f"category in {_string_list(categories)}")
    if created_after is not None:
        clauses.append(f"create_time >= {int(created_after)}")
    if created_before is not None:
        clauses.append(f"create_time < {int(created_before)}")
    if include_ids:
        clauses.append(f"item_id in {_string_list(include_ids)}")
    if exclude_ids:
        clauses.append(f"item_id not in {_string_list(exclude_ids)}")
    return " and ".join(clauses)


def _string_list(values: Sequence[str]) -> str:
    # ensure_ascii=False: Milvus Lite does not decode \u escapes, so "é" would never match
    return "[" + ",".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"
