import numpy as np
import pytest

from driftwise.model.topics import TopicModel, kmeans_centroids


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


def test_kmeans_finds_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    x = np.concatenate([c + 0.05 * rng.normal(size=(30, 8)) for c in centres])
    found = kmeans_centroids(x, 3, seed=1)
    # each true centre is matched by one found centroid (cosine > 0.99)
    assert sorted((found @ centres.T).argmax(axis=0).tolist()) == [0, 1, 2]
    assert ((found @ centres.T).max(axis=0) > 0.99).all()
    assert np.array_equal(found, kmeans_centroids(x, 3, seed=1))  # deterministic


def test_kmeans_rejects_more_clusters_than_rows() -> None:
    with pytest.raises(ValueError, match="k must be"):
        kmeans_centroids(np.eye(2), 3)
