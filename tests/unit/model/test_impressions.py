import pytest

from driftwise.model.impressions import ImpressionMatch, Impressions, Matched, OtherUsersImpression


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
