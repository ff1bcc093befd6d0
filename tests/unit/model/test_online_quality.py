from driftwise.model.events import EventType, Layer
from driftwise.model.online_quality import Counts, OnlineQuality, feedback_kind
from driftwise.model.ranking.explanations import Reason

T0 = 1_800_000_000.0  # a multiple of 3600: bucket starts are easy to read
INTEREST_DEEP = (Reason.INTEREST, Layer.DEEP)
SEQUENCE_SURFACE = (Reason.SEQUENCE, Layer.SURFACE)
COLD = (Reason.POPULAR, None)


def test_event_types_map_to_the_kinds_of_feedback_counts() -> None:
    kinds = {t: feedback_kind(t) for t in EventType}
    assert {t for t, k in kinds.items() if k is None} == {EventType.SEARCH, EventType.STATED_INTEREST}
    assert kinds[EventType.VIEW] == kinds[EventType.CLICK]
    assert (
        kinds[EventType.LIKE]
        == kinds[EventType.SHARE]
        == kinds[EventType.COMMENT]
        == kinds[EventType.PURCHASE]
    )
    assert kinds[EventType.DISLIKE] == kinds[EventType.HIDE] != kinds[EventType.SKIP]


def test_issued_items_and_feedback_count_under_their_reason_layer_and_position() -> None:
    quality = OnlineQuality()
    quality.issued(T0 + 5, [INTEREST_DEEP, SEQUENCE_SURFACE, INTEREST_DEEP])
    quality.issued(T0 + 15, [COLD, COLD])
    assert quality.feedback(EventType.LIKE, SEQUENCE_SURFACE, 2, T0 + 5)
    assert quality.feedback(EventType.VIEW, INTEREST_DEEP, 3, T0 + 5)
    assert quality.feedback(EventType.HIDE, COLD, 1, T0 + 15)
    assert not quality.feedback(EventType.SEARCH, COLD, 1, T0 + 15)

    report = quality.report(10, 3, now=T0 + 25)
    assert report.total == Counts(issued=5, clicks=1, likes=1, dislikes=1)
    assert dict(report.by_reason) == {
        Reason.INTEREST: Counts(issued=2, clicks=1),
        Reason.SEQUENCE: Counts(issued=1, likes=1),
        Reason.NEW_ITEM: Counts(),
        Reason.POPULAR: Counts(issued=2, dislikes=1),
    }
    # cold-start items have no layer: left out of by_layer
    assert dict(report.by_layer) == {
        Layer.SURFACE: Counts(issued=1, likes=1),
        Layer.MIDDLE: Counts(),
        Layer.DEEP: Counts(issued=2, clicks=1),
    }
    assert dict(report.by_position) == {
        1: Counts(issued=2, dislikes=1),
        2: Counts(issued=2, likes=1),
        3: Counts(issued=1, clicks=1),
    }
    assert report.over_time == (
        (T0, Counts(issued=3, clicks=1, likes=1)),
        (T0 + 10, Counts(issued=2, dislikes=1)),
        (T0 + 20, Counts()),
    )
    assert quality.by_reason_and_layer()[SEQUENCE_SURFACE] == Counts(issued=1, likes=1)


def test_positions_past_twenty_count_as_twenty() -> None:
    quality = OnlineQuality()
    quality.issued(T0, [INTEREST_DEEP] * 25)
    assert dict(quality.report(60, 1, now=T0).by_position)[20] == Counts(issued=6)


def test_feedback_counts_in_the_bucket_its_list_was_issued_in() -> None:
    quality = OnlineQuality()
    quality.issued(T0 + 1, [INTEREST_DEEP])
    quality.feedback(EventType.CLICK, INTEREST_DEEP, 1, issued_at=T0 + 1)  # arrives much later: same bucket
    over_time = quality.report(60, 10, now=T0 + 600).over_time
    assert [start for start, _ in over_time] == [T0 + 60 * k for k in range(1, 11)]
    assert all(c == Counts() for _, c in over_time)
    assert quality.report(60, 11, now=T0 + 600).over_time[0] == (T0, Counts(issued=1, clicks=1))


def test_wide_buckets_are_exact_and_reach_back_as_far_as_asked() -> None:
    quality = OnlineQuality()
    day = 24 * 3600
    quality.issued(T0 - 30 * day, [INTEREST_DEEP])  # 30 days back: only the hourly ring holds it
    quality.issued(T0 - 3 * 3600 + 5, [INTEREST_DEEP, INTEREST_DEEP])
    quality.issued(T0 - 1, [INTEREST_DEEP])
    hourly = quality.report(3600, 1440, now=T0 + 1)
    assert len(hourly.over_time) == 1440 and hourly.over_time[-1] == (T0, Counts())
    assert sum(c.issued for _, c in hourly.over_time) == 4
    assert dict(hourly.over_time)[T0 - 30 * day] == Counts(issued=1)
    assert dict(hourly.over_time)[T0 - 3 * 3600] == Counts(issued=2)
    assert dict(hourly.over_time)[T0 - 3600] == Counts(issued=1)
    # 5-minute buckets come from the 1-minute ring: exact, over the last day
    five = dict(quality.report(300, 288, now=T0).over_time)
    assert five[T0 - 3 * 3600] == Counts(issued=2) and five[T0 - 300] == Counts(issued=1)
    # 15 s is no multiple of a ring's width: the 10 s ring, each of its buckets where it starts
    fifteen = quality.report(15, 4, now=T0 - 1).over_time
    assert sum(c.issued for _, c in fifteen) == 1


def test_memory_is_bounded_old_buckets_are_reused() -> None:
    quality = OnlineQuality(widths=(10,), slots=3)
    quality.issued(T0, [INTEREST_DEEP])
    quality.issued(T0 + 30, [INTEREST_DEEP])  # takes the slot of T0's bucket
    quality.feedback(EventType.LIKE, INTEREST_DEEP, 1, issued_at=T0)  # its bucket is gone: totals only
    report = quality.report(10, 4, now=T0 + 30)
    assert [c for _, c in report.over_time] == [Counts(), Counts(), Counts(), Counts(issued=1)]
    assert report.total == Counts(issued=2, likes=1)
