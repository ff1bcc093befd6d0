import numpy as np
import pytest

from driftwise.model.topics import TopicModel, kmeans_centroids, learn_topics


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


def test_learned_topics_are_named_after_the_most_specific_label_and_shown_with_examples() -> None:
    rng = np.random.default_rng(0)
    # three clusters of items along axes 0, 1, 2; the taxonomy has a label for each axis and a
    # "hub" label close to everything (it would name every topic by plain nearest label)
    x = np.concatenate([np.eye(4)[k] + 0.05 * rng.normal(size=(20, 4)) for k in range(3)])
    titles = [f"{name} {i}" for name in ("space", "cooking", "war") for i in range(20)]
    hub = np.array([1.0, 1.0, 1.0, 0.0])
    specific = [0.3 * np.eye(4)[k] + np.eye(4)[3] for k in range(3)]  # weakly along one axis each
    taxonomy = TopicModel(["space", "cooking", "war", "hub"], np.stack([*specific, hub]), 0.05)
    assert set(taxonomy.assign(x).argmax(axis=1)) == {3}  # nearest label: the hub, every time
    topics = learn_topics(x, titles, taxonomy, 3, examples=2)
    assert sorted(topics.labels) == ["cooking", "space", "war"]
    for label, shown in zip(topics.labels, topics.examples, strict=True):
        assert len(shown) == 2 and all(title.startswith(label) for title in shown)
    assert topics.learned and topics.items == 60 and not taxonomy.learned
    # a saved model reads back the same, fingerprint included
    again = TopicModel.from_json(topics.to_json(), 0.05)
    assert again.fingerprint == topics.fingerprint and again.examples == topics.examples


def test_a_label_nearest_to_two_topics_names_each_with_its_first_title() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([np.eye(3)[k] + 0.05 * rng.normal(size=(10, 3)) for k in range(2)])
    titles = [f"t{i}" for i in range(20)]
    taxonomy = TopicModel(["only"], np.array([[1.0, 1.0, 0.0]]), 0.05)
    topics = learn_topics(x, titles, taxonomy, 2)
    assert len(set(topics.labels)) == 2
    assert all(
        label == f"only \u00b7 {shown[0]}"
        for label, shown in zip(topics.labels, topics.examples, strict=True)
    )


def test_a_big_catalogue_is_learned_from_a_sample_and_counted_whole() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([np.eye(4)[k] + 0.05 * rng.normal(size=(200, 4)) for k in range(3)])
    titles = [f"{name} {i}" for name in ("space", "cooking", "war") for i in range(200)]
    taxonomy = TopicModel(["space", "cooking", "war"], np.eye(4)[:3], 0.05)
    whole = learn_topics(x, titles, taxonomy, 3)
    sampled = learn_topics(x, titles, taxonomy, 3, sample=60)
    assert sorted(sampled.labels) == sorted(whole.labels) == ["cooking", "space", "war"]
    for label, shown in zip(sampled.labels, sampled.examples, strict=True):
        assert shown and all(title.startswith(label) for title in shown)  # titles of the sampled rows
    assert np.allclose(np.sort(sampled.centroids, axis=0), np.sort(whole.centroids, axis=0), atol=0.05)
    assert sampled.items == whole.items == 600  # when to relearn counts the whole catalogue
    assert learn_topics(x, titles, taxonomy, 3, sample=600).fingerprint == whole.fingerprint
