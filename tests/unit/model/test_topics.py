import numpy as np
import pytest

from driftwise.model.topics import TopicModel


def test_soft_assignment_prefers_the_nearest_centroid_and_sums_to_one() -> None:
    topics = TopicModel(["a", "b", "c"], np.eye(3), temperature=0.05)
    p = topics.assign(np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 1.0]]))
    assert p.shape == (2, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert list(p.argmax(axis=1)) == [0, 2]


def test_temperature_controls_how_soft_the_assignment_is() -> None:
    v = np.array([0.6, 0.5, 0.0])
    sharp = TopicModel(["a", "b", "c"], np.eye(3), temperature=0.01).assign_one(v)
    soft = TopicModel(["a", "b", "c"], np.eye(3), temperature=1.0).assign_one(v)
    assert sharp[0] > soft[0]


def test_labels_and_centroids_must_match() -> None:
    with pytest.raises(ValueError):
        TopicModel(["a", "b"], np.eye(3), temperature=0.1)
