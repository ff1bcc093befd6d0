"""Online quality: what became of the items Recommend issued (InsightService.GetOnlineQuality).

Fed with every issued list (each item's reason, layer and position) and with every feedback
whose impression id matched a list this server issued to that user with the item in it
(ImpressionMatch SHOWN), by the event's kind:

    CLICK, VIEW                     click
    LIKE, SHARE, COMMENT, PURCHASE  like
    SKIP                            skip
    DISLIKE, HIDE                   dislike
    SEARCH, STATED_INTEREST         not counted (not feedback on an item)

Counted since the server started, in memory, by (reason, layer) and by position (20 and later as
20), and over time by when the list was issued: a feedback counts in the time bucket of its list,
not of its own arrival. Time is kept in rings of `SLOTS` buckets at each width of `WIDTHS` (10 s
for 4 hours, 1 min for a day, 10 min for 10 days, 1 h for 60 days), so memory is bounded whatever
the traffic; a read sums the buckets of the widest ring whose width divides the width asked for
(exact), or of the 10 s ring when none does (each 10 s bucket then counts where it starts).
No gRPC, no clock of its own: callers pass the times.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from driftwise.model.events import EventType, Layer
from driftwise.model.impressions import Why
from driftwise.model.ranking.explanations import Reason

WIDTHS = (10, 60, 600, 3600)  # seconds per bucket of each ring
SLOTS = 1440  # buckets per ring
MAX_POSITION = 20  # positions past it count as it


class Kind(enum.IntEnum):
    """Where a count goes: index into a counts row [issued, clicks, likes, skips, dislikes]."""

    ISSUED = 0
    CLICK = 1
    LIKE = 2
    SKIP = 3
    DISLIKE = 4


FEEDBACK_KINDS = (Kind.CLICK, Kind.LIKE, Kind.SKIP, Kind.DISLIKE)

_KIND_OF = {
    EventType.CLICK: Kind.CLICK,
    EventType.VIEW: Kind.CLICK,
    EventType.LIKE: Kind.LIKE,
    EventType.SHARE: Kind.LIKE,
    EventType.COMMENT: Kind.LIKE,
    EventType.PURCHASE: Kind.LIKE,
    EventType.SKIP: Kind.SKIP,
    EventType.DISLIKE: Kind.DISLIKE,
    EventType.HIDE: Kind.DISLIKE,
}


def feedback_kind(event_type: EventType) -> Kind | None:
    """The kind a feedback event counts as; None for types that are not feedback on an item."""
    return _KIND_OF.get(event_type)


@dataclass(frozen=True, slots=True)
class Counts:
    issued: int = 0
    clicks: int = 0
    likes: int = 0
    skips: int = 0
    dislikes: int = 0

    @classmethod
    def of(cls, row: Sequence[int]) -> Counts:
        return cls(*row)

    @classmethod
    def sum(cls, rows: Iterable[Sequence[int]]) -> Counts:
        total = [0] * len(Kind)
        for row in rows:
            for k, n in enumerate(row):
                total[k] += n
        return cls(*total)


@dataclass(frozen=True, slots=True)
class QualityReport:
    total: Counts
    by_reason: tuple[tuple[Reason, Counts], ...]  # every reason, in enum order
    by_layer: tuple[tuple[Layer, Counts], ...]  # every layer, in enum order
    by_position: tuple[tuple[int, Counts], ...]  # positions with issued items, 1 first
    over_time: tuple[tuple[float, Counts], ...]  # (bucket start, counts), oldest first


class _Ring:
    """Counts rows of the last `slots` buckets of `width` seconds, by bucket number (t // width)."""

    def __init__(self, width: int, slots: int) -> None:
        self.width = width
        self._numbers = [-1] * slots  # bucket number each slot holds now
        self._rows = [[0] * len(Kind) for _ in range(slots)]

    def add(self, at: float, kind: Kind, n: int) -> None:
        number = math.floor(at / self.width)
        slot = number % len(self._numbers)
        held = self._numbers[slot]
        if held > number:  # a newer bucket took the slot: too old to count here
            return
        if held < number:
            self._numbers[slot] = number
            self._rows[slot] = [0] * len(Kind)
        self._rows[slot][kind] += n

    def buckets(self) -> Iterable[tuple[float, list[int]]]:
        """(start time, counts row) of every bucket held."""
        for number, row in zip(self._numbers, self._rows, strict=True):
            if number >= 0:
                yield float(number * self.width), row


class OnlineQuality:
    def __init__(self, widths: Sequence[int] = WIDTHS, slots: int = SLOTS) -> None:
        self._by_why: dict[Why, list[int]] = {}
        self._by_position: dict[int, list[int]] = {}
        self._rings = [_Ring(width, slots) for width in sorted(widths)]

    def issued(self, at: float, why: Sequence[Why]) -> None:
        """A list issued at `at`: each item's reason and layer, in list order."""
        for position, item_why in enumerate(why, start=1):
            self._count(item_why, position, at, Kind.ISSUED)

    def feedback(self, event_type: EventType, why: Why, position: int, issued_at: float) -> bool:
        """Feedback on an item SHOWN at `position` of a list issued at `issued_at`; whether it
        counted (types that are not feedback on an item do not)."""
        kind = feedback_kind(event_type)
        if kind is None:
            return False
        self._count(why, position, issued_at, kind)
        return True

    def _count(self, why: Why, position: int, at: float, kind: Kind) -> None:
        self._by_why.setdefault(why, [0] * len(Kind))[kind] += 1
        self._by_position.setdefault(min(position, MAX_POSITION), [0] * len(Kind))[kind] += 1
        for ring in self._rings:
            ring.add(at, kind, 1)

    def by_reason_and_layer(self) -> dict[Why, Counts]:
        """Every (reason, layer) counted so far, with its counts (the Prometheus counters)."""
        return {why: Counts.of(row) for why, row in self._by_why.items()}

    def report(self, bucket_seconds: int, buckets: int, now: float) -> QualityReport:
        """The counts so far, and over the `buckets` buckets of `bucket_seconds` up to the one
        holding `now` (each bucket starts at a multiple of `bucket_seconds` in Unix time)."""
        rows = self._by_why
        return QualityReport(
            total=Counts.sum(rows.values()),
            by_reason=tuple(
                (reason, Counts.sum(row for (r, _), row in rows.items() if r is reason)) for reason in Reason
            ),
            by_layer=tuple(
                (layer, Counts.sum(row for (_, lay), row in rows.items() if lay is layer)) for layer in Layer
            ),
            by_position=tuple(
                (position, Counts.of(row)) for position, row in sorted(self._by_position.items())
            ),
            over_time=self._over_time(bucket_seconds, buckets, now),
        )

    def _over_time(self, width: int, buckets: int, now: float) -> tuple[tuple[float, Counts], ...]:
        ring = next((r for r in reversed(self._rings) if width % r.width == 0), self._rings[0])
        newest = math.floor(now / width)
        first = newest - buckets + 1
        sums = [[0] * len(Kind) for _ in range(buckets)]
        for start, row in ring.buckets():
            index = math.floor(start / width) - first
            if 0 <= index < buckets:
                for k, n in enumerate(row):
                    sums[index][k] += n
        return tuple((float((first + i) * width), Counts.of(row)) for i, row in enumerate(sums))
