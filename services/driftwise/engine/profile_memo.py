"""Values derived from a profile, remembered while the same profile object is served.

Sound because a profile object never changes once served: a write that logs an event swaps in a
new object (copy on write, engine/writes.py; in cluster mode each snapshot read is its own
object). So what a Recommend derives from a profile (its seen items, its learned signals) can be
reused by the next Recommend of the same user until the next write, with no invalidation to get
wrong. `basis` is what else the value was derived from (the fitted models, the topics), compared
element by element by identity: a refit swaps in new objects. A weak reference to the profile
tells a live entry from an id() reused by a new object after the old one was dropped (a deleted
user)."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Generic, TypeVar

from driftwise.model.profile import UserProfile

T = TypeVar("T")


class ProfileMemo(Generic[T]):
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[weakref.ref[UserProfile], tuple[object, ...], T]] = (
            OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    def get(self, profile: UserProfile, basis: tuple[object, ...] = ()) -> T | None:
        entry = self._entries.get(id(profile))
        if entry is None or entry[0]() is not profile or not _same(entry[1], basis):
            self.misses += 1
            return None
        self._entries.move_to_end(id(profile))
        self.hits += 1
        return entry[2]

    def put(self, profile: UserProfile, value: T, basis: tuple[object, ...] = ()) -> T:
        self._entries[id(profile)] = (weakref.ref(profile), basis, value)
        self._entries.move_to_end(id(profile))
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
