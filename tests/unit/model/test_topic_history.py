import numpy as np
import pytest

from driftwise.model.config import InterestModelConfig
from driftwise.model.events import Event, EventType, Layer
from driftwise.model.profile import UserProfile
from driftwise.model.topic_history import sample_points, topic_history

CONFIG = InterestModelConfig()
K = 4


def events_and_inputs(n: int) -> tuple[list[Event], np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(5)
    types = [EventType.STATED_INTEREST, EventType.LIKE, EventType.VIEW, EventType.DISLIKE]
    # out of order now and then: a late event is decayed forward, whatever the order
    times = [1000.0 + 600 * k + (-900 if k % 7 == 3 else 0) for k in range(n)]
    events = [Event(f"e{k}", "u", types[k % 4], times[k], item_id=f"i{k}") for k in range(n)]
    vectors = rng.normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probs = rng.dirichlet(np.ones(K), size=n)
    return events, vectors, probs, [f"t{k}" for k in range(n)]


def test_points_spread_evenly_and_end_with_the_last_event() -> None:
    assert sample_points(3, 100) == [0, 1, 2]
    assert sample_points(0, 10) == []
    assert sample_points(101, 5) == [0, 25, 50, 75, 100]
    assert sample_points(1000, 1) == [999]
    picked = sample_points(1000, 7)
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 999


def test_the_history_ends_at_the_profile_the_events_build_one_at_a_time() -> None:
    events, vectors, probs, texts = events_and_inputs(40)
    whole = UserProfile.new("u", CONFIG, 8, K)
    for e, v, p, t in zip(events, vectors, probs, texts, strict=True):
        whole.apply(e, v, p, t, CONFIG, 0.0)
    fresh = UserProfile.new("u", CONFIG, 8, K)
    points = topic_history(fresh, events, vectors, probs, texts, CONFIG, max_points=6, top_topics=3, tau=0.1)
    assert [p.event_id for p in points] == [f"e{k}" for k in sample_points(40, 6)]
    assert points[-1].event_id == "e39" and points[-1].time == events[-1].time
    for layer_at in points[-1].layers:
        state = whole.layers[layer_at.layer]
        weights = state.topic_weights(0.1)
        assert [t.topic for t in layer_at.top] == list(weights.argsort()[::-1][:3])
        assert [t.weight for t in layer_at.top] == pytest.approx(sorted(weights, reverse=True)[:3])
        assert layer_at.mass == pytest.approx(state.mass_at(events[-1].time))
    assert fresh.version == 40


def test_each_point_is_the_profile_right_after_its_event() -> None:
    events, vectors, probs, texts = events_and_inputs(9)
    points = topic_history(
        UserProfile.new("u", CONFIG, 8, K),
        events,
        vectors,
        probs,
        texts,
        CONFIG,
        max_points=9,
        top_topics=K,
        tau=1.0,
    )
    assert [la.top == () for la in points[0].layers] == [True, True, False]  # a stated interest: deep only
    for k, point in enumerate(points):
        upto = UserProfile.new("u", CONFIG, 8, K)
        upto.apply_many(events[: k + 1], vectors[: k + 1], probs[: k + 1], texts[: k + 1], CONFIG, 0.0)
        for layer_at in point.layers:
            state = upto.layers[layer_at.layer]
            if state.mass == 0:  # a stated interest alone reaches the deep layer only
                assert layer_at.top == () and layer_at.layer is not Layer.DEEP
                continue
            assert sum(t.weight for t in layer_at.top) == pytest.approx(1.0)
            by_topic = {t.topic: t.affinity for t in layer_at.top}
            assert [by_topic[k] for k in range(K)] == pytest.approx(list(state.topic_affinity()))
