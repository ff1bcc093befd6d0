import numpy as np
import pytest

from driftwise.model.transitions import TopicTransitions, pair_counts

A, B, C = np.eye(3)


def test_pair_counts_sum_outer_products_of_consecutive_events() -> None:
    counts = pair_counts([A, B, B, C])
    assert counts[0, 1] == 1 and counts[1, 1] == 1 and counts[1, 2] == 1
    assert counts.sum() == 3
    assert pair_counts([A]).shape == (3, 3) and not pair_counts([A]).any()


def test_global_transitions_predict_the_usual_next_topic() -> None:
    # everyone goes a -> b -> c
    model = TopicTransitions.fit([[A, B, C]] * 10, n_topics=3, smoothing=0.1)
    np.testing.assert_allclose(model.matrix.sum(axis=1), 1.0)
    assert model.predict([A]).argmax() == 1  # newest event is in topic a: b comes next
    assert model.predict([B, A]).argmax() == 2


def test_a_users_own_habit_overrides_the_global_one_with_enough_evidence() -> None:
    model = TopicTransitions.fit([[A, B]] * 10, n_topics=3, smoothing=0.1)
    # this user (newest first) keeps going a -> c
    habit = [A, C, A, C, A, C, A, C, A]
    assert model.predict(habit, user_prior=1.0).argmax() == 2
    assert model.predict(habit, user_prior=1000.0).argmax() == 1  # a strong prior keeps the global
    assert model.predict([]) is None


def test_smoothing_must_be_positive() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        TopicTransitions.fit([[A, B]], n_topics=3, smoothing=0.0)
