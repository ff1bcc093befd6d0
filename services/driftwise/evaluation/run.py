"""`driftwise eval`: every method on one leave-one-out split of a MovieLens-format dataset.

Methods, all on the same split (``protocol``): popularity, item-to-item co-occurrence (ItemKNN),
optionally SASRec (``sasrec``), and Driftwise (``interest_model``) with its component weights tuned on the
validation phase only (coordinate ascent on NDCG@10 over a fixed grid), then reported on test.
With ``sequence_model`` the content sequence model is trained (validation protocol, see
``sasrec``) and its next-item query is one more component for the tuning to weigh.
Ablations switch one part of the tuned Driftwise off at a time (the others keep their weights).
Serving-path rows: ``Recommend`` scores only what its retrieval finds (the nearest items to each
layer's direction, ``retrieval_depths`` hits per layer, plus the co-occurrence followers of the
recent events); "driftwise, K per layer retrieved" ranks the same scores within that candidate set.

Cold items: a seeded random ``cold_fraction`` of the items that are someone's test target is
removed from every user's training data (they stay in the catalogue, with their text vectors).
Each method then ranks the full catalogue for the users whose test target is a cold item; the
"cold hit rate" is HR@10 on those users. An ID-based model cannot score an item it never saw.

Item vectors come from the serving encoder's model (all-MiniLM-L6-v2, run in this process) on
the text serving encodes (``NewItem.text``), cached on disk by a hash of the texts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from driftwise.datasets.movielens import Movie, load_movies, load_ratings
from driftwise.evaluation.baselines import item_knn, popularity
from driftwise.evaluation.interest_model import Components, DriftwiseUnderTest, SequenceQueries
from driftwise.evaluation.protocol import Phase, ScoreFn, Split, evaluate, leave_one_out
from driftwise.model.config import InterestModelConfig, RankingConfig
from driftwise.model.ranking import COMPONENTS, component_weights
from driftwise.model.topics import TopicModel, kmeans_centroids, normalize_rows

if TYPE_CHECKING:  # torch is imported only when a transformer is trained
    from driftwise.sequence.transformer import SequenceModelConfig

GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
OBJECTIVE = "ndcg@10"
TOPICS = 20
Report = Callable[[str], None]


@dataclass(frozen=True)
class EvalOptions:
    dataset: Path
    cache_dir: Path
    sasrec: bool = False  # opt-in: minutes of training on 2 cores
    bert4rec: bool = False  # opt-in: minutes of training on 2 cores
    sequence_model: bool = False  # opt-in: minutes of training on 2 cores
    sequence_epochs: int | None = None  # cap for both transformers; None: SequenceModelConfig's
    ablations: bool = True
    # hits per layer search for the serving-path rows (Recommend scores what retrieval finds)
    retrieval_depths: tuple[int, ...] = (10, 50, 100, 200)
    cold_fraction: float = 0.1
    seed: int = 0
    interest: InterestModelConfig = field(default_factory=InterestModelConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)


@dataclass
class EvalResult:
    dataset: str
    users: int
    items: int
    test: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metrics
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    tuned_weights: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def item_vectors(movies: Sequence[Movie], cache_dir: Path, report: Report) -> npt.NDArray[np.float32]:
    """Encoder vectors of the items' serving texts, cached by a hash of the texts."""
    from driftwise.engine import NewItem

    texts = [NewItem(m.item_id, m.title, tags=m.tags).text() for m in movies]
    key = hashlib.sha256("\n".join(["all-MiniLM-L6-v2", *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"item-vectors-{key}.npy"
    from driftwise.inference.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder(num_threads=os.cpu_count() or 1)
    if path.exists():
        cached: npt.NDArray[np.float32] = np.load(path)
        # the key covers the texts, not the encoder: re-encode a sample so a cache written by
        # other weights or code is never used silently
        sample = np.random.default_rng(0).choice(len(texts), size=min(16, len(texts)), replace=False)
        fresh = embedder.embed([texts[i] for i in sample])
        if cached.shape == (len(texts), fresh.shape[1]) and np.allclose(cached[sample], fresh, atol=1e-4):
            return cached
        report(f"stale item-vector cache {path}: encoding again")
    report(f"encoding {len(texts)} item texts (cached in {path} afterwards) ...")
    vectors = np.concatenate([embedder.embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def cluster_topics(vectors: npt.NDArray[np.float64], movies: Sequence[Movie], seed: int) -> TopicModel:
    """k-means topics over item vectors, each labelled by its two most frequent genres."""
    centroids = kmeans_centroids(vectors, TOPICS, seed=seed)
    members = (vectors @ centroids.T).argmax(axis=1)
    labels = []
    for k in range(TOPICS):
        genres = Counter(g for i in np.flatnonzero(members == k) for g in movies[i].tags[:3])
        labels.append(" / ".join(g for g, _ in genres.most_common(2)) or f"topic {k}")
    return TopicModel(labels, centroids, InterestModelConfig().assignment_temperature)


def tune(components: Components, split: Split, start: Mapping[str, float]) -> dict[str, float]:
    """Coordinate ascent over GRID on validation ``OBJECTIVE``, two rounds, from ``start``."""
    weights = dict(start)

    def value(w: Mapping[str, float]) -> float:
        if not any(w.values()):
            return -1.0
        return evaluate(components.score_fn(w), split, "validation")[OBJECTIVE]

    best = value(weights)
    for _ in range(2):
        for name in COMPONENTS:
            for candidate in GRID:
                trial = {**weights, name: candidate}
                score = value(trial)
                if score > best + 1e-9:
                    best, weights = score, trial
    return weights


def with_weights(ranking: RankingConfig, weights: Mapping[str, float]) -> RankingConfig:
    fields = {f"{name}_boost": w for name, w in weights.items()}
    return ranking.model_copy(update=fields)


def tune_driftwise(
    split: Split,
    vectors: npt.NDArray[np.float64],
    topics: TopicModel,
    options: EvalOptions,
    queries: SequenceQueries | None = None,
) -> tuple[RankingConfig, Components]:
    """The ranking configuration that scores best on validation, and its validation components.

    Tuned: the component weights (``tune``), and whether a rejected recent item pulls its
    followers down or counts as one more item consumed (on MovieLens a low rating is still a
    film watched).
    """
    best: tuple[float, RankingConfig, Components] | None = None
    for push in (True, False):
        ranking = options.ranking.model_copy(update={"collaborative_negatives_push": push})
        components = DriftwiseUnderTest(split, vectors, topics, options.interest, ranking).components(
            "validation", queries
        )
        start = component_weights(ranking)
        if queries is not None:
            start["sequence"] = 1.0
        weights = tune(components, split, start)
        value = evaluate(components.score_fn(weights), split, "validation")[OBJECTIVE]
        if best is None or value > best[0]:
            best = (value, with_weights(ranking, weights), components)
    assert best is not None
    return best[1], best[2]


def cold_split(split: Split, fraction: float, seed: int) -> tuple[Split, set[str]]:
    """The split with a random ``fraction`` of test-target items removed from all training data."""
    targets = sorted(set(split.test.values()), key=split.item_index.__getitem__)
    rng = np.random.default_rng(seed)
    cold = {targets[i] for i in rng.choice(len(targets), int(len(targets) * fraction), replace=False)}
    keep_validation = {u: e for u, e in split.validation_events.items() if e.item_id not in cold}
    # a user whose validation item is cold has no validation target; the test phase is what counts
    train = tuple(e for e in split.train if e.item_id not in cold)
    return Split(train, keep_validation, dict(split.test_events), split.items, split.users), cold


def cold_hit_rate(score_fn: ScoreFn, split: Split, cold: set[str]) -> dict[str, float]:
    """HR@10 and HR@20 on the users whose test item is cold."""
    users = [u for u, item in split.test.items() if item in cold]
    sub = Split(split.train, {}, {u: split.test_events[u] for u in users}, split.items, split.users)
    metrics = evaluate(score_fn, sub, "test")
    return {"hr@10": metrics["hr@10"], "hr@20": metrics["hr@20"], "users": float(len(users))}


def run_evaluation(options: EvalOptions, report: Report = print) -> EvalResult:
    started = time.perf_counter()
    movies = load_movies(options.dataset)
    split = leave_one_out(load_ratings(options.dataset), [m.item_id for m in movies])
    by_id = {m.item_id: m for m in movies}
    ordered = [by_id[i] for i in split.items]
    vectors = normalize_rows(item_vectors(ordered, options.cache_dir, report))
    result = EvalResult(str(options.dataset), len(split.evaluated_users), split.n_items)
    result.seconds["encode"] = time.perf_counter() - started

    def timed(name: str, fn: Callable[[], None]) -> None:
        t = time.perf_counter()
        fn()
        result.seconds[name] = time.perf_counter() - t
        report(f"{name}: {result.seconds[name]:.0f} s")

    def baseline(name: str, make: Callable[[Split, Phase], ScoreFn]) -> None:
        for phase in ("validation", "test"):
            metrics = evaluate(make(split, phase), split, phase, vectors)
            (result.validation if phase == "validation" else result.test)[name] = metrics

    timed("popularity", lambda: baseline("popularity", popularity))
    timed("item_knn", lambda: baseline("item_knn", item_knn))
    if options.sasrec:
        from driftwise.evaluation.sasrec import sasrec

        config = sequence_config(options)
        timed("sasrec", lambda: baseline("sasrec", lambda data, phase: sasrec(data, phase, config)))
    if options.bert4rec:
        from driftwise.evaluation.bert4rec import bert4rec, bert4rec_config

        cloze = bert4rec_config(options.sequence_epochs)
        timed("bert4rec", lambda: baseline("bert4rec", lambda data, phase: bert4rec(data, phase, cloze)))

    topics = cluster_topics(vectors, ordered, options.seed)
    queries: dict[Phase, SequenceQueries] = {}
    if options.sequence_model:
        timed(
            "sequence_model",
            lambda: queries.update(sequence_queries(split, vectors, sequence_config(options))),
        )

    tuned: list[RankingConfig] = []  # filled by driftwise(), used by cold()

    def driftwise() -> None:
        ranking, validation = tune_driftwise(split, vectors, topics, options, queries.get("validation"))
        tuned.append(ranking)
        weights = component_weights(ranking)
        result.tuned_weights = {**weights, "negatives_push": float(ranking.collaborative_negatives_push)}
        result.validation["driftwise"] = evaluate(validation.score_fn(weights), split, "validation", vectors)
        model = DriftwiseUnderTest(split, vectors, topics, options.interest, ranking)
        test = model.components("test", queries.get("test"), retrieval_depths=options.retrieval_depths)
        result.test["driftwise"] = evaluate(test.score_fn(weights), split, "test", vectors)
        for depth in options.retrieval_depths:
            result.test[f"driftwise, {depth} per layer retrieved"] = evaluate(
                test.score_fn(weights, depth), split, "test", vectors
            )
        if not options.ablations:
            return
        for name in COMPONENTS:
            if weights[name]:
                off = {**weights, name: 0.0}
                result.test[f"driftwise without {name}"] = evaluate(
                    test.score_fn(off), split, "test", vectors
                )
        no_transitions = ranking.model_copy(update={"transition_mix": 0.0})
        plain = model.components("test", queries.get("test"), ranking=no_transitions)
        result.test["driftwise without transitions"] = evaluate(
            plain.score_fn(weights), split, "test", vectors
        )

    timed("driftwise", driftwise)

    def cold() -> None:
        cold_data, cold_items = cold_split(split, options.cold_fraction, options.seed)
        result.cold["popularity"] = cold_hit_rate(popularity(cold_data, "test"), cold_data, cold_items)
        result.cold["item_knn"] = cold_hit_rate(item_knn(cold_data, "test"), cold_data, cold_items)
        # without the sequence model: it was trained with the cold items, which would leak them
        cold_model = DriftwiseUnderTest(cold_data, vectors, topics, options.interest, tuned[0])
        components = cold_model.components("test")
        result.cold["driftwise"] = cold_hit_rate(
            components.score_fn(component_weights(tuned[0])), cold_data, cold_items
        )
        result.cold["driftwise"]["items"] = float(len(cold_items))

    timed("cold_items", cold)
    result.seconds["total"] = time.perf_counter() - started
    return result


def sequence_config(options: EvalOptions) -> SequenceModelConfig:
    from driftwise.sequence.transformer import SequenceModelConfig

    if options.sequence_epochs is None:
        return SequenceModelConfig()
    return SequenceModelConfig(max_epochs=options.sequence_epochs)


def sequence_queries(
    split: Split, vectors: npt.NDArray[np.float64], config: SequenceModelConfig
) -> dict[Phase, SequenceQueries]:
    """Train the content sequence model on ``split`` (validation protocol) and give every evaluated
    user's next-item query vector for both phases."""
    from driftwise.evaluation.sasrec import content_sequence_model, phase_histories

    model = content_sequence_model(split, vectors, config)
    out: dict[Phase, SequenceQueries] = {}
    for phase in ("validation", "test"):
        users, histories, _ = phase_histories(split, phase)
        q = model.query_vectors([vectors[h] for h in histories])
        out[phase] = {u: q[row] for row, u in enumerate(users)}
    return out
