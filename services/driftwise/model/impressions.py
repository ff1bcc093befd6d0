"""The recommendation lists a server issued lately (impressions), so that a feedback event can be
matched to the list and position it answers.

Kept in memory, the newest `capacity` lists: enough for feedback that comes back within minutes
(at 100 Recommend/s, 100,000 lists are the last quarter of an hour). A list that is forgotten, or
that another process issued, is UNKNOWN, and the feedback is still recorded as the event it is:
the user's action happened whatever the list's id says. Each list also keeps when it was issued
and, per item, the reason and layer it was recommended for, so that feedback can be counted
under them (driftwise.model.online_quality).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from driftwise.model.events import Layer
from driftwise.model.ranking.explanations import Reason

# why one item of a list was there: its explanation's reason and the layer that contributed most
# (None: cold start, no layer)
Why = tuple[Reason, Layer | None]


class ImpressionMatch(enum.IntEnum):
    """How a feedback's impression id matched. Numbers match driftwise.v1.ImpressionMatch."""

    SHOWN = 1  # a list issued to this user, and the item was in it
    NOT_IN_LIST = 2  # a list issued to this user, without the item
    UNKNOWN = 3  # not a list this server remembers issuing (made up, forgotten, or another's)


@dataclass(frozen=True, slots=True)
class Matched:
    match: ImpressionMatch
    position: int = 0  # 1-based place of the item in the list when SHOWN
    why: Why | None = None  # the item's reason and layer when SHOWN (None if not recorded)
    issued_at: float = 0.0  # when the list was issued (Unix seconds), when SHOWN


@dataclass(frozen=True, slots=True)
class _Issued:
    user_id: str
    item_ids: tuple[str, ...]
    why: tuple[Why, ...]  # per item, or () when not recorded
    issued_at: float


_WHYS: dict[Why, Why] = {}  # every (reason, layer) pair seen, once


class OtherUsersImpression(ValueError):
    """The impression id names a list issued to another user."""


class Impressions:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lists: OrderedDict[str, _Issued] = OrderedDict()  # by recommendation id

    def __len__(self) -> int:
        return len(self._lists)

    def record(
        self,
        recommendation_id: str,
        user_id: str,
        item_ids: Sequence[str],
        why: Sequence[Why] = (),
        issued_at: float = 0.0,
    ) -> None:
        """A list issued to `user_id`; `why`: each item's reason and layer, in list order."""
        if self._capacity <= 0:
            return
        if why and len(why) != len(item_ids):
            raise ValueError("one reason and layer per item")
        # a few (reason, layer) pairs exist: each item points to a shared one (~80 bytes an item less)
        shared = tuple(_WHYS.setdefault(w, w) for w in why)
        self._lists[recommendation_id] = _Issued(user_id, tuple(item_ids), shared, issued_at)
        while len(self._lists) > self._capacity:
            self._lists.popitem(last=False)

    def match(self, recommendation_id: str, user_id: str, item_id: str) -> Matched:
        """How feedback of `user_id` on `item_id` matches the list; OtherUsersImpression if the
        list was issued to someone else (a caller's mix-up: recording it would credit the wrong
        list)."""
        impression = self._lists.get(recommendation_id)
        if impression is None:
            return Matched(ImpressionMatch.UNKNOWN)
        if impression.user_id != user_id:
            raise OtherUsersImpression(recommendation_id)
        if item_id not in impression.item_ids:
            return Matched(ImpressionMatch.NOT_IN_LIST)
        index = impression.item_ids.index(item_id)
        why = impression.why[index] if impression.why else None
        return Matched(ImpressionMatch.SHOWN, index + 1, why, impression.issued_at)
