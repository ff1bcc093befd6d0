import numpy as np
import pytest

from driftwise.model.config import InterestModelConfig
from driftwise.model.events import Event, EventType, Layer
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel

CONFIG = InterestModelConfig(recent_events=3)


def event(i: int, t: float, type_: EventType = EventType.CLICK, dwell: float = 0.0) -> Event:
    return Event(f"e{i}", "u", type_, t, item_id=f"i{i}", dwell_seconds=dwell)


def vec(i: int, d: int = 8) -> np.ndarray:
    v = np.random.default_rng(i).normal(size=d)
    return v / np.linalg.norm(v)


def test_weights_order_and_dwell_boost() -> None:
    w = CONFIG.weight
    assert w(EventType.PURCHASE) > w(EventType.LIKE) >= w(EventType.SHARE) > w(EventType.COMMENT)
    assert w(EventType.COMMENT) > w(EventType.CLICK) > w(EventType.VIEW) > w(EventType.SEARCH) > 0
    assert all(w(t) < 0 for t in (EventType.DISLIKE, EventType.SKIP, EventType.HIDE))
    assert w(EventType.CLICK, dwell_seconds=60) > w(EventType.CLICK)
    assert w(EventType.CLICK, dwell_seconds=10_000) == pytest.approx(w(EventType.CLICK) * 2)  # bounded
    assert w(EventType.DISLIKE, dwell_seconds=60) == w(EventType.DISLIKE)


def test_config_overrides_merge_with_the_defaults() -> None:
    config = InterestModelConfig(event_weights={EventType.LIKE: 5.0}, half_life_seconds={Layer.DEEP: 60.0})
    assert config.weight(EventType.LIKE) == 5.0
    assert config.weight(EventType.CLICK) == InterestModelConfig().weight(EventType.CLICK)
    assert config.half_life_seconds[Layer.DEEP] == 60.0 and len(config.half_life_seconds) == 3
    with pytest.raises(ValueError, match="positive"):
        InterestModelConfig(half_life_seconds={Layer.DEEP: 0.0})


def test_apply_updates_every_layer_version_and_recent_events() -> None:
    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    for i, t in enumerate([100.0, 50.0, 300.0, 200.0]):
        p.apply(event(i, t), vec(i), np.array([0.5, 0.5]), f"text {i}", CONFIG, now=1000.0 + i)
    assert p.version == 4 and p.event_count == 4
    assert [r.event_id for r in p.recent] == ["e2", "e3", "e0"]  # newest event time first, capped
    assert p.last_event_time == 300.0
    assert p.updated_at == 1003.0
    for layer in Layer:
        assert p.layers[layer].last_time == 300.0
    # the surface layer (1 h) forgets faster than the deep layer (180 days)
    assert p.layers[Layer.SURFACE].mass_at(300.0 + 86400) < p.layers[Layer.DEEP].mass_at(300.0 + 86400)


def test_snapshot_round_trip() -> None:
    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    for i in range(5):
        p.apply(event(i, float(i)), vec(i), np.array([0.3, 0.7]), f"t{i}", CONFIG, now=9.0)
    q = UserProfile.from_bytes(p.to_bytes())
    assert (q.user_id, q.version, q.event_count, q.updated_at) == ("u", 5, 5, 9.0)
    for layer in Layer:
        np.testing.assert_allclose(q.layers[layer].vector, p.layers[layer].vector)
        np.testing.assert_allclose(q.layers[layer].affinity, p.layers[layer].affinity)
        assert q.layers[layer].mass == p.layers[layer].mass
    assert [r.event_id for r in q.recent] == [r.event_id for r in p.recent]
    np.testing.assert_allclose(q.recent[0].vector, p.recent[0].vector, atol=1e-6)


def test_empty_profile_round_trip() -> None:
    p = UserProfile.new("u", CONFIG, dimension=4, n_topics=2)
    q = UserProfile.from_bytes(p.to_bytes())
    assert q.version == 0 and q.recent == [] and q.last_event_time is None


def test_a_stated_interest_seeds_the_deep_layer_only() -> None:
    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    stated = Event("s1", "u", EventType.STATED_INTEREST, 100.0, text="I love old westerns")
    weight = p.apply(stated, vec(1), np.array([1.0, 0.0]), stated.text, CONFIG, now=100.0)
    assert weight > 0
    deep = p.layers[Layer.DEEP].direction(0.5)
    assert deep is not None and np.allclose(deep, vec(1))
    assert p.layers[Layer.SURFACE].direction(0.5) is None and p.layers[Layer.MIDDLE].direction(0.5) is None


def test_among_events_at_the_same_time_the_last_applied_is_newest() -> None:
    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    for i in range(3):
        p.apply(event(i, 100.0), vec(i), np.array([0.5, 0.5]), "", CONFIG, now=0.0)
    assert [r.event_id for r in p.recent] == ["e2", "e1", "e0"]


def test_apply_many_equals_applying_each_event_in_turn() -> None:
    rng = np.random.default_rng(3)
    topics = TopicModel(["a", "b", "c"], np.eye(3, 8), temperature=0.1)
    kinds = [EventType.LIKE, EventType.DISLIKE, EventType.VIEW, EventType.SKIP, EventType.STATED_INTEREST]
    times = [1000.0, 5.0, 5.0, 7200.0, 3.0, 90_000.0, 5.0, 400.0] * 4  # out of order, with ties
    events = [
        Event(f"e{i}", "u", kinds[i % len(kinds)], t, item_id=f"i{i}", dwell_seconds=float(i % 3) * 20)
        for i, t in enumerate(times)
    ]
    vectors = rng.normal(size=(len(events), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probs = topics.assign(vectors)
    texts = [f"text {i}" for i in range(len(events))]

    one_by_one = UserProfile.new("u", CONFIG, 8, 3)
    for e, v, p, text in zip(events, vectors, probs, texts, strict=True):
        one_by_one.apply(e, v, p, text, CONFIG, now=1.0)
    batched = UserProfile.new("u", CONFIG, 8, 3)
    for part in (slice(0, 13), slice(13, None)):  # two batches, like two requests
        batched.apply_many(events[part], vectors[part], probs[part], texts[part], CONFIG, now=1.0)

    assert (batched.version, batched.event_count) == (one_by_one.version, one_by_one.event_count)
    for layer, state in one_by_one.layers.items():
        other = batched.layers[layer]
        np.testing.assert_allclose(other.vector, state.vector, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(other.affinity, state.affinity, rtol=1e-9, atol=1e-12)
        assert other.rejected is not None and state.rejected is not None
        np.testing.assert_allclose(other.rejected, state.rejected, rtol=1e-9, atol=1e-12)
        assert other.mass == pytest.approx(state.mass) and other.last_time == state.last_time
    assert [r.event_id for r in batched.recent] == [r.event_id for r in one_by_one.recent]
    assert [r.weight for r in batched.recent] == [r.weight for r in one_by_one.recent]


def test_snapshots_in_the_earlier_npz_format_still_load() -> None:
    import io
    import json

    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    p.apply(event(1, 1.0, EventType.DISLIKE), vec(1), np.array([0.3, 0.7]), "t1", CONFIG, now=2.0)
    meta = {
        "user_id": "u",
        "version": 1,
        "event_count": 1,
        "updated_at": 2.0,
        "layers": {
            int(layer): {"half_life": s.half_life_seconds, "mass": s.mass, "last_time": s.last_time}
            for layer, s in p.layers.items()
        },
        "recent": [[r.event_id, int(r.type), r.time, r.item_id, r.text, r.weight] for r in p.recent],
    }
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for layer, s in p.layers.items():  # as written before rejections were kept: no r{layer}
        arrays[f"v{int(layer)}"], arrays[f"a{int(layer)}"] = s.vector, s.affinity
    arrays["recent_vectors"] = np.stack([r.vector for r in p.recent]).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    q = UserProfile.from_bytes(buf.getvalue())
    assert q.version == 1 and q.recent[0].event_id == "e1"
    np.testing.assert_allclose(q.layers[Layer.DEEP].vector, p.layers[Layer.DEEP].vector)
    assert not q.layers[Layer.DEEP].rejected.any()  # type: ignore[union-attr]


def test_a_copy_can_change_without_changing_the_original() -> None:
    p = UserProfile.new("u", CONFIG, dimension=8, n_topics=2)
    p.apply(event(1, 1.0), vec(1), np.array([0.3, 0.7]), "t1", CONFIG, now=2.0)
    before = p.to_bytes()
    q = p.copy()
    q.apply(event(2, 2.0, EventType.DISLIKE), vec(2), np.array([0.5, 0.5]), "t2", CONFIG, now=3.0)
    assert p.to_bytes() == before and q.version == 2
    q2 = UserProfile.from_bytes(q.to_bytes())
    q2.apply(event(3, 3.0), vec(3), np.array([0.5, 0.5]), "t3", CONFIG, now=4.0)  # loaded arrays are writable
