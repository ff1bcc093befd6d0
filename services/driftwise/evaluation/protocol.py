"""Offline evaluation protocol: leave-one-out by time, full ranking, seen items filtered.

Split (``leave_one_out``)
    Interactions are put in time order; ties (same timestamp) keep the order in which they were
    given (``sorted`` is stable), so for ``driftwise.datasets.movielens.load_ratings`` ties keep file
    order. That is the documented tie rule: 16% of consecutive ratings in ml-latest-small share a
    second. Per user, the LAST interaction in that order is the test target, the second last the
    validation target and the rest is train. Users with fewer than ``MIN_INTERACTIONS`` (3)
    interactions keep everything in train and are not evaluated (ml-latest-small has none: every user
    has at least 20 ratings). Every interaction counts, whatever its rating.

Phases
    ``"validation"``: the model is trained on ``train`` only and each user's validation item is the
    target. ``"test"``: the model is trained on ``train`` + the validation interactions and each
    user's test item is the target. ``Split.training(phase)`` gives exactly that training data (in
    time order) and ``Split.history(user, phase)`` the user's part of it.

Ranking (``evaluate``)
    Each evaluated user's ``score_fn`` output is ranked over the FULL catalogue (``Split.items``).
    Items the user has in the phase's training data are removed from the ranking. Higher score ranks
    first; equal scores are ordered by item index (lower index first), a stable deterministic rule.
    Item indices follow the order in which items first appear in the time-ordered interactions,
    then any extra catalogue items in the order given. If a target item is itself among the user's
    seen items (a re-consumption; never in ml-latest-small) it cannot be ranked and counts as a miss.

Metrics, for K in ``KS`` (one relevant item per user, rank r starting at 1)
    ``hr@K`` 1 if r <= K; ``ndcg@K`` 1/log2(r+1) if r <= K; ``mrr@K`` 1/r if r <= K; each else 0,
    averaged over evaluated users. ``hr@10_se`` is the standard error sqrt(p(1-p)/n) of hr@10.
    ``coverage@10`` is the fraction of catalogue items in at least one user's top-10.
    ``diversity@10`` (only with ``item_vectors``) is the mean over users of the mean pairwise
    (1 - cosine similarity) between the vectors of their top-10 items. ``users`` is n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Phase = Literal["validation", "test"]
PHASES: tuple[Phase, ...] = ("validation", "test")
MIN_INTERACTIONS = 3
KS = (10, 20)
TOP = 10  # list length for coverage and diversity

FloatArray = npt.NDArray[np.float64]
# score_fn(user_id, history_item_ids) -> one score per catalogue item (indexed by Split.item_index)
ScoreFn = Callable[[str, Sequence[str]], npt.ArrayLike]


class InteractionLike(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def time(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Interaction:
    user_id: str
    item_id: str
    time: float
    seq: int  # position in the time-ordered input (ties in input order): the global order
    rating: float | None = None


@dataclass(frozen=True)
class Split:
    train: tuple[Interaction, ...]  # time order
    validation_events: dict[str, Interaction]  # user -> held-out validation interaction
    test_events: dict[str, Interaction]  # user -> held-out test interaction
    items: tuple[str, ...]  # the catalogue; position = item index
    users: tuple[str, ...]  # every user, first-appearance order
    item_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_index", {item: i for i, item in enumerate(self.items)})

    @property
    def validation(self) -> dict[str, str]:
        return {u: e.item_id for u, e in self.validation_events.items()}

    @property
    def test(self) -> dict[str, str]:
        return {u: e.item_id for u, e in self.test_events.items()}

    @property
    def evaluated_users(self) -> tuple[str, ...]:
        return tuple(u for u in self.users if u in self.test_events)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def targets(self, phase: Phase) -> dict[str, str]:
        _check(phase)
        return self.validation if phase == "validation" else self.test

    def training(self, phase: Phase) -> tuple[Interaction, ...]:
        """The training data of a phase, in time order: train, plus the validation events for test."""
        _check(phase)
        if phase == "validation":
            return self.train
        return tuple(sorted((*self.train, *self.validation_events.values()), key=lambda e: e.seq))

    def histories(self, phase: Phase) -> dict[str, tuple[str, ...]]:
        """Each user's items in the phase's training data, in time order."""
        out: dict[str, list[str]] = {u: [] for u in self.users}
        for e in self.training(phase):
            out[e.user_id].append(e.item_id)
        return {u: tuple(items) for u, items in out.items()}

    def history(self, user_id: str, phase: Phase) -> tuple[str, ...]:
        return tuple(e.item_id for e in self.training(phase) if e.user_id == user_id)


def _check(phase: str) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")


def leave_one_out(ratings: Iterable[InteractionLike], catalogue: Iterable[str] = ()) -> Split:
    """Split interactions per user by time: last -> test, second last -> validation, rest -> train.

    ``catalogue`` adds item ids that may have no interaction (they are ranked too, after the others
    in index order).
    """
    ordered = sorted(ratings, key=lambda r: r.time)  # stable: ties keep input order
    events = [
        Interaction(r.user_id, r.item_id, float(r.time), seq, getattr(r, "rating", None))
        for seq, r in enumerate(ordered)
    ]
    per_user: dict[str, list[Interaction]] = {}
    items: dict[str, None] = {}
    for e in events:
        per_user.setdefault(e.user_id, []).append(e)
        items.setdefault(e.item_id, None)
    for item in catalogue:
        items.setdefault(item, None)
    held_out: set[int] = set()
    validation: dict[str, Interaction] = {}
    test: dict[str, Interaction] = {}
    for user, seq in per_user.items():
        if len(seq) < MIN_INTERACTIONS:
            continue
        validation[user], test[user] = seq[-2], seq[-1]
        held_out.update((seq[-2].seq, seq[-1].seq))
    train = tuple(e for e in events if e.seq not in held_out)
    return Split(train, validation, test, tuple(items), tuple(per_user))


def rank_of(scores: FloatArray, candidate: npt.NDArray[np.bool_], target: int) -> int:
    """1-based rank of ``target`` among ``candidate`` items (higher score first, ties by index)."""
    s = scores[target]
    better = candidate & (scores > s)
    tied_before = candidate[:target] & (scores[:target] == s)
    return int(better.sum()) + int(tied_before.sum()) + 1


def top_items(scores: FloatArray, candidate: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.intp]:
    """Indices of the best ``k`` candidate items (higher score first, ties by lower index)."""
    idx = np.flatnonzero(candidate)
    # stable sort on -score keeps ascending index among equal scores
    order = np.argsort(-scores[idx], kind="stable")[:k]
    top: npt.NDArray[np.intp] = idx[order]
    return top


def intra_list_diversity(vectors: FloatArray) -> float:
    """Mean pairwise (1 - cosine) between the rows of ``vectors`` (0 for fewer than 2 rows)."""
    n = vectors.shape[0]
    if n < 2:
        return 0.0
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    sim = v @ v.T
    pairs = sim[np.triu_indices(n, k=1)]
    return float(np.mean(1.0 - pairs))


def evaluate(
    score_fn: ScoreFn,
    split: Split,
    phase: Phase,
    item_vectors: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Rank the catalogue for every evaluated user and average the metrics (see module doc)."""
    _check(phase)
    n_items = split.n_items
    vectors = None if item_vectors is None else np.asarray(item_vectors, dtype=np.float64)
    if vectors is not None and vectors.shape[0] != n_items:
        raise ValueError(f"item_vectors has {vectors.shape[0]} rows, the catalogue {n_items} items")
    histories = split.histories(phase)
    targets = split.targets(phase)
    users = [u for u in split.users if u in targets]
    sums = {f"{name}@{k}": 0.0 for k in KS for name in ("hr", "ndcg", "mrr")}
    recommended = np.zeros(n_items, dtype=bool)
    diversity = 0.0
    for user in users:
        history = histories[user]
        scores = np.asarray(score_fn(user, history), dtype=np.float64)
        if scores.shape != (n_items,):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected ({n_items},)")
        if np.isnan(scores).any():
            raise ValueError(f"score_fn returned NaN for user {user!r}")
        candidate = np.ones(n_items, dtype=bool)
        candidate[[split.item_index[i] for i in history]] = False
        target = split.item_index[targets[user]]
        rank = rank_of(scores, candidate, target) if candidate[target] else math.inf
        for k in KS:
            if rank <= k:
                sums[f"hr@{k}"] += 1.0
                sums[f"ndcg@{k}"] += 1.0 / math.log2(rank + 1)
                sums[f"mrr@{k}"] += 1.0 / rank
        top = top_items(scores, candidate, TOP)
        recommended[top] = True
        if vectors is not None:
            diversity += intra_list_diversity(vectors[top])
    n = len(users)
    result = {name: (total / n if n else 0.0) for name, total in sums.items()}
    p = result["hr@10"]
    result["hr@10_se"] = math.sqrt(p * (1.0 - p) / n) if n else 0.0
    result[f"coverage@{TOP}"] = float(recommended.sum()) / n_items if n_items else 0.0
    if vectors is not None:
        result[f"diversity@{TOP}"] = diversity / n if n else 0.0
    result["users"] = float(n)
    return result


def format_metrics(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" if k != "users" else f"{k}={int(v)}" for k, v in metrics.items())
