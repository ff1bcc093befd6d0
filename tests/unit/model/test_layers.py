import itertools

import numpy as np
import pytest

from driftwise.model.layers import LayerState, decay_factor, softmax

HL = 100.0


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float64)
    return v / np.linalg.norm(v)


def layer(d: int = 3, k: int = 2) -> LayerState:
    return LayerState.empty(HL, d, k)


def test_update_follows_the_decay_formula() -> None:
    s = layer()
    e1, e2 = unit(1, 0, 0), unit(0, 1, 0)
    s.add(e1, 2.0, np.array([1.0, 0.0]), time=0.0)
    s.add(e2, 1.0, np.array([0.0, 1.0]), time=HL)  # one half-life later
    np.testing.assert_allclose(s.vector, 0.5 * 2.0 * e1 + 1.0 * e2)
    assert s.mass == pytest.approx(0.5 * 2.0 + 1.0)
    np.testing.assert_allclose(s.affinity, [1.0, 1.0])
    assert s.last_time == HL


def test_mass_halves_per_half_life_and_never_grows_into_the_past() -> None:
    s = layer()
    s.add(unit(1, 0, 0), 3.0, np.array([1.0, 0.0]), time=50.0)
    assert s.mass_at(50.0 + HL) == pytest.approx(1.5)
    assert s.mass_at(50.0 + 2 * HL) == pytest.approx(0.75)
    assert s.mass_at(0.0) == pytest.approx(3.0)


def test_order_of_arrival_does_not_matter() -> None:
    rng = np.random.default_rng(1)
    events = [
        (unit(*rng.normal(size=4)), float(w), rng.dirichlet([1, 1, 1]), float(t))
        for w, t in zip([1.0, -0.5, 2.0, 0.7], [10.0, 250.0, 40.0, 130.0], strict=True)
    ]
    states = []
    for order in itertools.permutations(events):
        s = LayerState.empty(HL, 4, 3)
        for e, w, p, t in order:
            s.add(e, w, p, t)
        states.append(s)
    for s in states[1:]:
        np.testing.assert_allclose(s.vector, states[0].vector, atol=1e-12)
        np.testing.assert_allclose(s.affinity, states[0].affinity, atol=1e-12)
        assert s.mass == pytest.approx(states[0].mass)
        assert s.last_time == 250.0


def test_negative_event_pushes_direction_away() -> None:
    s = layer()
    liked, disliked = unit(1, 1, 0), unit(0, 1, 0)
    s.add(liked, 1.0, np.array([0.5, 0.5]), 0.0)
    before = float(s.direction(0.5) @ disliked)
    s.add(disliked, -0.5, np.array([0.0, 1.0]), 1.0)
    after = float(s.direction(0.5) @ disliked)
    assert after < before
    assert s.mass == pytest.approx(1.0 * decay_factor(1.0, HL) + 0.5)  # |w| counts as evidence


def test_empty_layer_has_no_direction_and_zero_mass() -> None:
    s = layer()
    assert s.direction(0.5) is None
    assert s.mass_at(1e9) == 0.0
    np.testing.assert_allclose(s.topic_weights(0.1), [0.5, 0.5])


def test_topic_weights_are_a_tempered_softmax_of_affinity_per_mass() -> None:
    s = layer(k=3)
    s.add(unit(1, 0, 0), 1.0, np.array([0.7, 0.2, 0.1]), 0.0)
    for tau in (0.05, 0.1, 1.0):
        w = s.topic_weights(tau)
        assert w.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(w, softmax(np.array([0.7, 0.2, 0.1]), tau))
    assert s.topic_weights(0.05)[0] > s.topic_weights(1.0)[0]  # smaller tau, more peaked
    # affinity per unit of mass does not depend on when it is read
    s2 = layer(k=3)
    s2.add(unit(1, 0, 0), 1.0, np.array([0.7, 0.2, 0.1]), 0.0)
    s2.add(unit(1, 0, 0), 1.0, np.array([0.7, 0.2, 0.1]), 10 * HL)
    np.testing.assert_allclose(s2.topic_affinity(), [0.7, 0.2, 0.1])


def test_many_rejections_push_only_up_to_the_bound() -> None:
    s = layer()
    liked, disliked = unit(1, 1, 0), unit(0, 1, 0)
    s.add(liked, 1.0, np.array([0.5, 0.5]), 0.0)
    for t in range(1, 50):  # a burst of dislikes of the same thing
        s.add(disliked, -2.0, np.array([0.0, 1.0]), 0.0 + t * 1e-3)
    unbounded = s.direction(max_push=1e9)
    bounded = s.direction(max_push=0.5)
    assert unbounded is not None and bounded is not None
    assert float(unbounded @ liked) < 0  # unbounded: the profile turns against what was liked
    assert float(bounded @ liked) > 0.5  # bounded: still points at it, pushed off the dislike
    assert float(bounded @ disliked) < float(liked @ disliked)
