import pytest

from driftwise.model.events import Layer
from driftwise.model.impressions import ImpressionMatch, Impressions, Matched, OtherUsersImpression
from driftwise.model.ranking.explanations import Reason


def test_feedback_matches_the_list_its_user_was_shown() -> None:
    impressions = Impressions(capacity=10)
    impressions.record("r1", "alice", ["i1", "i2", "i3"])
    assert impressions.match("r1", "alice", "i2") == Matched(ImpressionMatch.SHOWN, 2)
    assert impressions.match("r1", "alice", "i9") == Matched(ImpressionMatch.NOT_IN_LIST)
    assert impressions.match("made-up", "alice", "i1") == Matched(ImpressionMatch.UNKNOWN)
    with pytest.raises(OtherUsersImpression):
        impressions.match("r1", "bob", "i1")


def test_only_the_newest_lists_are_remembered() -> None:
    impressions = Impressions(capacity=2)
    for n in range(3):
        impressions.record(f"r{n}", "alice", ["i1"])
    assert len(impressions) == 2
    assert impressions.match("r0", "alice", "i1").match is ImpressionMatch.UNKNOWN
    assert impressions.match("r2", "alice", "i1").match is ImpressionMatch.SHOWN
    nothing = Impressions(capacity=0)
    nothing.record("r", "alice", ["i1"])
    assert len(nothing) == 0


def test_a_shown_item_carries_its_reason_layer_and_the_time_its_list_was_issued() -> None:
    impressions = Impressions(capacity=10)
    why = [(Reason.INTEREST, Layer.DEEP), (Reason.SEQUENCE, Layer.SURFACE)]
    impressions.record("r1", "alice", ["i1", "i2"], why, issued_at=1234.5)
    assert impressions.match("r1", "alice", "i2") == Matched(
        ImpressionMatch.SHOWN, 2, (Reason.SEQUENCE, Layer.SURFACE), 1234.5
    )
    impressions.record("r2", "alice", ["i1"])  # without reasons (not recorded)
    assert impressions.match("r2", "alice", "i1") == Matched(ImpressionMatch.SHOWN, 1, None, 0.0)
    with pytest.raises(ValueError):
        impressions.record("r3", "alice", ["i1", "i2"], why[:1])
