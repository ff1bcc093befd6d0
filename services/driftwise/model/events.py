"""Events as the interest model sees them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventType(enum.IntEnum):
    """What a user did. Numbers match driftwise.v1.EventType."""

    VIEW = 1
    CLICK = 2
    SEARCH = 3
    LIKE = 4
    COMMENT = 5
    SHARE = 6
    PURCHASE = 7
    DISLIKE = 8
    SKIP = 9
    HIDE = 10
    STATED_INTEREST = 11  # free text the user wrote about themselves: deep layer only


NEGATIVE_TYPES = frozenset({EventType.DISLIKE, EventType.SKIP, EventType.HIDE})


class Layer(enum.IntEnum):
    """The three interest layers. Numbers match driftwise.v1.InterestLayer."""

    SURFACE = 1
    MIDDLE = 2
    DEEP = 3


@dataclass(frozen=True, slots=True)
class Event:
    """One validated event. `time` is Unix seconds; `item_id`/`text` may be empty, not both."""

    event_id: str
    user_id: str
    type: EventType
    time: float
    item_id: str = ""
    text: str = ""
    dwell_seconds: float = 0.0
    impression_id: str = ""
