"""ProfileMemo: what is derived from a profile is computed once per profile object (and basis);
a new object (a write swapped one in) or a new basis (a refit) computes it again."""

from __future__ import annotations

import gc

import numpy as np

from driftwise.engine.profile_memo import ProfileMemo
from driftwise.model.profile import UserProfile
from driftwise.storage.item_filter import Excluded, ItemFilter
from driftwise.storage.vector_store import StoredItem


def profile(user: str = "u") -> UserProfile:
    return UserProfile(user, {})


def test_remembered_per_profile_object_and_basis() -> None:
    memo: ProfileMemo[str] = ProfileMemo(size=8)
    fit, refit = object(), object()
    p1 = profile()
    assert memo.get(p1, (fit,)) is None
    memo.put(p1, "v1", (fit,))
    assert memo.get(p1, (fit,)) == "v1"
    assert memo.get(p1, (refit,)) is None  # a refit swapped the models in: computed again
    assert memo.get(profile(), (fit,)) is None  # a write swapped a new profile in
    assert (memo.hits, memo.misses) == (1, 3)


def test_an_entry_dies_with_its_profile() -> None:
    """A deleted user's profile is dropped: a new object that gets the same id() must not be
    served the old value (the weak reference tells them apart)."""
    memo: ProfileMemo[str] = ProfileMemo(size=8)
    p = profile()
    memo.put(p, "deleted user's items")
    dead_key = id(p)
    del p
    gc.collect()
    fresh = profile()
    # the old entry, under the new object's id (as when CPython reuses the address)
    memo._entries[id(fresh)] = memo._entries.pop(dead_key)
    assert memo.get(fresh) is None


def test_bounded() -> None:
    memo: ProfileMemo[int] = ProfileMemo(size=2)
    profiles = [profile(str(i)) for i in range(3)]
    for i, p in enumerate(profiles):
        memo.put(p, i)
    assert memo.get(profiles[0]) is None and memo.get(profiles[2]) == 2


def test_the_filter_leaves_out_both_the_requests_ids_and_the_seen_ones() -> None:
    seen = Excluded.of(["s2", "s1"])
    assert seen.clause == 'item_id not in ["s1","s2"]'
    allowed = ItemFilter(categories=("c",), exclude_ids=frozenset({"x", "s1"}), also_excluded=seen)
    assert allowed.expression() == 'category in ["c"] and item_id not in ["x"] and item_id not in ["s1","s2"]'

    def stored(item_id: str) -> StoredItem:
        return StoredItem(item_id, "t", "c", 0, np.zeros(4, dtype=np.float32))

    assert [i for i in ("x", "s1", "s2", "ok") if allowed.allows(stored(i))] == ["ok"]
    assert ItemFilter(also_excluded=seen).expression() == 'item_id not in ["s1","s2"]'
