import numpy as np

from driftwise.model.config import InterestModelConfig, RankingConfig
from driftwise.model.events import Event, EventType, Layer
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import (
    Candidate,
    explain,
    layer_weights,
    mmr_order,
    rank_cold_start,
    rank_for_profile,
)
from driftwise.model.topics import TopicModel

CONFIG = InterestModelConfig()
RANKING = RankingConfig()
TOPICS = TopicModel(["space", "cooking", "history", "sport"], np.eye(4), temperature=0.05)


def unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def profile_liking(vectors: list[np.ndarray], times: list[float]) -> UserProfile:
    p = UserProfile.new("u", CONFIG, dimension=4, n_topics=4)
    for i, (v, t) in enumerate(zip(vectors, times, strict=True)):
        p.apply(
            Event(f"e{i}", "u", EventType.LIKE, t, item_id=f"seen{i}"),
            v,
            TOPICS.assign_one(v),
            f"liked {i}",
            CONFIG,
            now=t,
        )
    return p


def test_layer_weights_follow_evidence() -> None:
    p = profile_liking([unit([1, 0, 0, 0])] * 3, [0.0, 1.0, 2.0])
    fresh = layer_weights(p, at=2.0, config=RANKING)
    later = layer_weights(p, at=2.0 + 30 * 86400, config=RANKING)  # a month later
    assert abs(sum(fresh.values()) - 1.0) < 1e-9
    assert later[Layer.SURFACE] < fresh[Layer.SURFACE]
    assert later[Layer.DEEP] > fresh[Layer.DEEP]


def test_ranks_items_near_the_users_interests_first_and_explains_them() -> None:
    p = profile_liking([unit([1, 0.1, 0, 0]), unit([1, 0, 0.1, 0])], [0.0, 10.0])
    cands = [
        Candidate("cook", unit([0, 1, 0, 0])),
        Candidate("space", unit([1, 0, 0, 0.05])),
        Candidate("sport", unit([0, 0, 0, 1])),
    ]
    ranked = rank_for_profile(
        p,
        cands,
        TOPICS,
        at=10.0,
        count=3,
        diversity=0.0,
        config=RANKING,
        topic_temperature=CONFIG.topic_temperature,
    )
    assert next(r.item_id for r in ranked) == "space"
    top = ranked[0]
    assert TOPICS.labels[top.topic] == "space" and top.topic_weight > 0.5
    assert top.layer in set(Layer) and top.similarity > 0.9
    assert top.evidence and top.evidence[0][0].event_id in {"e0", "e1"}
    assert "space" in explain(top, TOPICS) and "liked" in explain(top, TOPICS)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_disliked_direction_ranks_lower() -> None:
    p = profile_liking([unit([1, 0, 0, 0]), unit([0, 1, 0, 0])], [0.0, 1.0])
    base = rank_for_profile(
        p,
        [Candidate("cook", unit([0.5, 1, 0, 0]))],  # related, not a near-duplicate
        TOPICS,
        at=1.0,
        count=1,
        diversity=0.0,
        config=RANKING,
        topic_temperature=0.1,
    )[0].score
    p.apply(
        Event("n", "u", EventType.DISLIKE, 2.0, item_id="x"),
        unit([0, 1, 0, 0]),
        TOPICS.assign_one(unit([0, 1, 0, 0])),
        "bad",
        CONFIG,
        now=2.0,
    )
    after = rank_for_profile(
        p,
        [Candidate("cook", unit([0.5, 1, 0, 0]))],  # related, not a near-duplicate
        TOPICS,
        at=2.0,
        count=1,
        diversity=0.0,
        config=RANKING,
        topic_temperature=0.1,
    )[0].score
    assert after < base


def test_mmr_trades_relevance_for_variety() -> None:
    vectors = np.stack([unit([1, 0, 0, 0]), unit([1, 0.01, 0, 0]), unit([0, 1, 0, 0])])
    scores = np.array([1.0, 0.99, 0.8])
    assert mmr_order(scores, vectors, diversity=0.0, count=2) == [0, 1]
    assert mmr_order(scores, vectors, diversity=0.5, count=2) == [0, 2]


def test_cold_start_prefers_popular_and_fresh_items_and_diversifies() -> None:
    cands = [
        Candidate("old-popular", unit([1, 0, 0, 0]), popularity=1.0, created_at=0.0),
        Candidate("near-dup", unit([1, 0.01, 0, 0]), popularity=0.95, created_at=0.0),
        Candidate("new", unit([0, 0, 1, 0]), popularity=0.2, created_at=1e9),
        Candidate("obscure", unit([0, 0, 0, 1]), popularity=0.0, created_at=None),
    ]
    ranked = rank_cold_start(cands, TOPICS, now=1e9, count=3, config=RANKING)
    ids = [r.item_id for r in ranked]
    assert ids[0] == "old-popular" and "new" in ids and "near-dup" not in ids[:2]
    assert all(r.layer is None for r in ranked)
    assert explain(ranked[0], TOPICS).startswith("popular or new")


def test_the_best_new_item_is_lifted_to_its_position_and_nothing_else_moves() -> None:
    from driftwise.model.ranking import promote_new_items

    scores = np.array([9.0, 8.0, 7.0, 6.0, 1.0, 0.5, 0.2])
    is_new = np.array([False, False, False, False, True, True, False])
    everyone = np.ones(7, dtype=bool)
    out = promote_new_items(scores, is_new, everyone, slots=1, position=3)
    order = list(np.argsort(-out, kind="stable"))
    assert order[:4] == [0, 1, 4, 2]  # the better new item (4) now ranks 3rd
    assert out[5] == scores[5] and out[3] == scores[3]
    # not eligible (already seen) -> the next new item is lifted instead
    seen = everyone.copy()
    seen[4] = False
    assert list(np.argsort(-promote_new_items(scores, is_new, seen, 1, 3), kind="stable"))[2] == 5
    # a new item already above the bar stays where it is; slots=0 changes nothing
    high = scores.copy()
    high[4] = 8.5
    assert np.array_equal(promote_new_items(high, is_new, everyone, 1, 3), high)
    assert np.array_equal(promote_new_items(scores, is_new, everyone, 0, 3), scores)


def test_each_item_says_whether_interest_sequence_or_newness_ranked_it() -> None:
    from driftwise.model.ranking import Reason, Signals

    p = profile_liking([unit([1, 0.1, 0, 0])], [0.0])
    cands = [
        Candidate("space", unit([1, 0, 0, 0.05]), popularity=0.5),
        Candidate("follows", unit([0, 1, 0, 0]), popularity=0.5),  # far by content, often comes next
        Candidate("sport", unit([0, 0, 0, 1]), popularity=0.5),
        Candidate("brand-new", unit([0, 0, 1, 0]), popularity=0.0),
    ]
    seen = p.recent[0]
    signals = Signals(
        collaborative=np.array([0.0, 2.0, 0.0, 0.0]),
        followed=lambda item: [(seen, 1.0)] if item == "follows" else [],
    )
    config = RANKING.model_copy(update={"new_item_position": 3})
    ranked = rank_for_profile(
        p, cands, TOPICS, at=0.0, count=4, diversity=0.0, config=config,
        topic_temperature=CONFIG.topic_temperature, signals=signals,
    )  # fmt: skip
    reasons = {r.item_id: r.reason for r in ranked}
    assert reasons == {
        "space": Reason.INTEREST,
        "follows": Reason.SEQUENCE,
        "brand-new": Reason.NEW_ITEM,
        "sport": Reason.INTEREST,
    }
    follows = next(r for r in ranked if r.item_id == "follows")
    assert follows.evidence == ((seen, 1.0),)
    assert explain(follows, TOPICS) == "often chosen right after \u201cliked 0\u201d"
    assert [r.item_id for r in ranked].index("brand-new") == 2  # lifted to position 3


def test_near_duplicates_of_a_rejected_item_are_left_out_or_ranked_last() -> None:
    space, cooking = unit([1, 0, 0, 0]), unit([0, 1, 0, 0])
    p = profile_liking([space, cooking], [0.0, 1.0])
    p.apply(
        Event("no", "u", EventType.DISLIKE, 2.0, item_id="c0"),
        cooking,
        TOPICS.assign_one(cooking),
        "",
        CONFIG,
        2.0,
    )
    cands = [
        Candidate("c1", unit([0.05, 1, 0, 0])),  # cos 0.999 to the disliked item: a near-duplicate
        Candidate("c2", unit([0.6, 1, 0, 0])),  # cos 0.86: related, not a duplicate
        Candidate("s1", unit([1, 0, 0.1, 0])),
    ]

    def rank(keep: bool) -> list[str]:
        ranked = rank_for_profile(
            p, cands, TOPICS, at=2.0, count=3, diversity=0.0, config=RANKING,
            topic_temperature=CONFIG.topic_temperature, keep_rejected=keep,
        )  # fmt: skip
        return [r.item_id for r in ranked]

    assert sorted(rank(keep=False)) == ["c2", "s1"]
    assert rank(keep=True)[-1] == "c1" and len(rank(keep=True)) == 3
    assert sorted(rank(keep=True)[:2]) == ["c2", "s1"]
