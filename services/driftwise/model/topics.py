"""Topics: labelled centroids and the soft assignment of vectors to them (docs/interest-model.md §3)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwise.model.layers import Vector

Matrix = npt.NDArray[np.float64]
UnitRows = npt.NDArray[np.floating[Any]]  # unit vectors in rows, float32 (serving) or float64


# the most items k-means learns topics from (`learn_topics`)
TOPIC_SAMPLE = 50_000


def normalize_rows(x: npt.ArrayLike) -> Matrix:
    m = np.asarray(x, dtype=np.float64)
    norms = np.sqrt(np.einsum("...i,...i->...", m, m))[..., np.newaxis]  # ~5x np.linalg.norm
    return np.asarray(m / np.maximum(norms, 1e-12), dtype=np.float64)


def rows(vectors: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """The vectors (equal lengths, at least one) as the rows of a matrix, in one call: `np.stack`
    checks and reshapes each one first (a few hundred per request)."""
    matrix: npt.NDArray[Any] = np.concatenate(vectors).reshape(len(vectors), -1)
    return matrix


def unit_rows32(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Unit rows in float32: what ranking scores candidates with (half the memory traffic of
    float64; the cosines differ by ~1e-7)."""
    m = np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", m, m))[:, np.newaxis]
    return np.asarray(m / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


class TopicModel:
    """K topics with a label and a unit centroid each.

    Either a zero-shot taxonomy (centroids: the encoder's embedding of each label) or learned from
    the catalogue (`learn_topics`: k-means centroids, named after the nearest taxonomy label and
    with the titles of the items nearest to each, `examples`). Profiles remember the `fingerprint`
    of the model their topic affinities were computed with.
    """

    def __init__(
        self,
        labels: Sequence[str],
        centroids: npt.ArrayLike,
        temperature: float,
        examples: Sequence[Sequence[str]] = (),
        items: int = 0,
    ) -> None:
        c = normalize_rows(centroids)
        if c.ndim != 2 or c.shape[0] != len(labels):
            raise ValueError(f"{len(labels)} labels but centroids of shape {c.shape}")
        self.labels = tuple(labels)
        self.centroids = c
        self.temperature = temperature
        self.examples = tuple(tuple(e) for e in examples) or tuple(() for _ in labels)
        self.items = items  # learned topics: the size of the catalogue they were learned from
        digest = hashlib.blake2b(digest_size=8)
        digest.update("\n".join(self.labels).encode())
        digest.update(np.round(c, 6).tobytes())
        self.fingerprint = digest.hexdigest()

    @property
    def learned(self) -> bool:
        return any(self.examples)

    def to_json(self) -> str:
        return json.dumps(
            {
                "labels": self.labels,
                "examples": self.examples,
                "items": self.items,
                "centroids": self.centroids.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str, temperature: float) -> TopicModel:
        data = json.loads(text)
        return cls(data["labels"], np.array(data["centroids"]), temperature, data["examples"], data["items"])

    @property
    def size(self) -> int:
        return len(self.labels)

    def assign(self, vectors: npt.ArrayLike, *, unit: bool = False) -> Matrix:
        """Soft assignment (n, K): softmax over cosine similarity to the centroids. ``unit``: the
        rows are unit already (ranking's candidates), so the work is one product in their dtype."""
        rows = np.atleast_2d(np.asarray(vectors))
        if unit:
            sims = np.asarray(rows @ self.centroids.T.astype(rows.dtype), dtype=np.float64)
        else:
            sims = normalize_rows(rows) @ self.centroids.T
        z = sims / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float64)

    def assign_one(self, vector: Vector) -> Vector:
        return np.asarray(self.assign(vector)[0], dtype=np.float64)


def kmeans_centroids(vectors: npt.ArrayLike, k: int, *, seed: int = 0, iterations: int = 25) -> Matrix:
    """Spherical k-means (cosine) over unit rows: the data-driven alternative to a taxonomy.

    Starts from k rows chosen with k-means++ seeding (deterministic for a seed); an emptied
    cluster is re-seeded with the row farthest from its centroid.
    """
    x = normalize_rows(vectors)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(n)]]
    closest = 1.0 - x @ centroids[0]
    for _ in range(1, k):
        p = np.maximum(closest, 0.0) ** 2
        pick = int(rng.choice(n, p=p / p.sum())) if p.sum() > 0 else int(rng.integers(n))
        centroids.append(x[pick])
        closest = np.minimum(closest, 1.0 - x @ x[pick])
    c = np.stack(centroids)
    for _ in range(iterations):
        sims = x @ c.T
        labels = sims.argmax(axis=1)
        best = sims[np.arange(n), labels]
        for j in range(k):
            members = labels == j
            if members.any():
                c[j] = x[members].sum(axis=0)
            else:  # re-seed with the worst-served row
                worst = int(best.argmin())
                c[j], best[worst] = x[worst], 1.0
        c = normalize_rows(c)
    result: Matrix = c
    return result


def learn_topics(
    vectors: npt.ArrayLike,
    titles: Sequence[str],
    taxonomy: TopicModel,
    k: int,
    *,
    seed: int = 0,
    examples: int = 3,
    sample: int = TOPIC_SAMPLE,
) -> TopicModel:
    """Topics learned from a catalogue: k-means over its item vectors, each topic named after the
    taxonomy label nearest to its centroid and shown with the titles of its most central items.

    A label nearest to several topics (a "hub" label close to everything) names each of them with
    its first title added, so no two topics read the same. A catalogue of more than `sample` items
    is learned from `sample` of them (seeded): a few tens of thousands place a few dozen centroids
    as well as a million do, and the float64 copies of a million rows took 6 GB.
    """
    everything = np.asarray(vectors)
    n = len(everything)
    chosen = np.arange(n)
    if n > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    x = normalize_rows(everything[chosen] if n > sample else everything)
    centroids = kmeans_centroids(x, k, seed=seed)
    members = (x @ centroids.T).argmax(axis=1)
    shown: list[tuple[str, ...]] = []
    for j in range(k):
        rows = np.flatnonzero(members == j)
        central = rows[np.argsort(-(x[rows] @ centroids[j]), kind="stable")[:examples]]
        shown.append(tuple(titles[chosen[i]] for i in central))
    names = _name_topics(centroids, taxonomy)
    counts = Counter(names)
    labels = [
        name if counts[name] == 1 or not shown[j] else f"{name} \u00b7 {shown[j][0]}"
        for j, name in enumerate(names)
    ]
    return TopicModel(labels, centroids, taxonomy.temperature, shown, n)


def _name_topics(centroids: Matrix, taxonomy: TopicModel) -> list[str]:
    """A taxonomy label per centroid: the one most specifically close to it. Similarities are
    centred per label first: some labels sit close to everything an encoder embeds (hubs) and
    would otherwise name most topics."""
    sims = centroids @ taxonomy.centroids.T  # (k, labels)
    specific = sims - sims.mean(axis=0, keepdims=True)
    return [taxonomy.labels[int(i)] for i in specific.argmax(axis=1)]
