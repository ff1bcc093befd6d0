"""What a refit learns from the event log, and what it says about one profile's next items.

`LearnedModels` is fitted on the whole log (`fit_learned`) and swapped in whole by the engine, so
a request never sees half of one refit and half of another. `signals_for` turns it into the
per-request signals ranking weighs; `Recommend` and the self-tuning (`driftwise.model.tuning`)
both call it, so what is tuned is what is served.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from driftwise.model.collaborative import SequentialCoOccurrence, top_k_columns
from driftwise.model.config import RankingConfig
from driftwise.model.layers import Vector
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.ranking import Signals
from driftwise.model.topics import TopicModel, rows
from driftwise.model.transitions import TopicTransitions
from driftwise.sequence.two_tower import TwoTowerScorer

if TYPE_CHECKING:
    from driftwise.model.tuning import Catalogue


@dataclass(frozen=True)
class ItemTimes:
    """When each item got a positive event, sorted per item: how popular it was in any window."""

    index: dict[str, int]
    indptr: npt.NDArray[np.intp]
    times: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, events: Iterable[tuple[str, float]]) -> ItemTimes:
        """From (item_id, time) of positive events."""
        pairs = sorted(events)
        items = list(dict.fromkeys(item for item, _ in pairs))
        index = {item: i for i, item in enumerate(items)}
        rows = np.array([index[item] for item, _ in pairs], dtype=np.intp)
        indptr = np.searchsorted(rows, np.arange(len(items) + 1)).astype(np.intp)
        return cls(index, indptr, np.array([t for _, t in pairs], dtype=np.float64))

    def trending(self, item_ids: Sequence[str], at: float, window: float) -> Vector:
        """log1p(positive events in [at - window, at)) per item, scaled to [0, 1] among them."""
        # every candidate's event times in one array (segments of `times`), compared at once
        rows = np.array([self.index.get(item, -1) for item in item_ids], dtype=np.intp)
        known = np.flatnonzero(rows >= 0)
        starts, stops = self.indptr[rows[known]], self.indptr[rows[known] + 1]
        lengths = stops - starts
        counts = np.zeros(len(item_ids))
        if lengths.sum():
            offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            times = self.times[offsets + np.arange(lengths.sum())]
            inside = (times >= at - window) & (times < at)
            owner = np.repeat(known, lengths)
            counts = np.bincount(owner, weights=inside, minlength=len(item_ids)).astype(np.float64)
        top = counts.max() if len(counts) else 0.0
        return np.log1p(counts) / np.log1p(top) if top > 0 else counts


@dataclass(frozen=True)
class Fitted:
    """Item co-occurrence and topic transitions fitted on item sequences (time order), the times
    of the positive events (trending popularity), and the next-item two-tower where one was
    trained (`driftwise.sequence.two_tower`)."""

    cooccurrence: SequentialCoOccurrence
    transitions: TopicTransitions
    item_times: ItemTimes
    two_tower: TwoTowerScorer | None = None

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[str]],
        item_topics: Mapping[str, Vector],
        topics: TopicModel,
        config: RankingConfig,
        catalogue: Catalogue | None = None,
        positives: Iterable[tuple[str, float]] = (),
        two_tower: TwoTowerScorer | None = None,
    ) -> Fitted:
        """`item_topics`: topic assignment per known item; `catalogue` (unit rows, sorted by id)
        gives items nobody has touched text edges from their nearest interacted items;
        `positives`: (item_id, time) of the positive events; `two_tower`: trained apart (it takes
        a time budget, and none of the ranking settings changes it)."""
        known = () if catalogue is None else catalogue.item_ids
        items = sorted({i for seq in sequences for i in seq}.union(known))
        matrix = None
        if catalogue is not None and items == list(known):
            matrix = catalogue.vectors  # every item is in the catalogue: its rows as they are
        elif catalogue is not None and items:
            index, zero = catalogue.index, np.zeros(catalogue.vectors.shape[1], dtype=np.float32)
            matrix = np.stack([catalogue.vectors[index[i]] if i in index else zero for i in items])
        cooccurrence = SequentialCoOccurrence.fit(
            sequences,
            items,
            window=config.cooccurrence_window,
            backward=config.cooccurrence_backward,
            popularity_exponent=config.cooccurrence_popularity_exponent,
            neighbours=config.cooccurrence_neighbours,
            vectors=matrix,
        )
        topic_sequences = [[item_topics[i] for i in seq if i in item_topics] for seq in sequences]
        transitions = TopicTransitions.fit(topic_sequences, topics.size)
        return cls(cooccurrence, transitions, ItemTimes.fit(positives), two_tower)


@dataclass(frozen=True, slots=True)
class Learned:
    """What the models learned from the log say about one profile's next items."""

    signals: Signals
    collaborative: Callable[[Sequence[str]], Vector]  # co-occurrence score of items (0 if unknown)
    followers: list[str]  # the items that most often follow the recent events: candidates
    trending: Callable[[Sequence[str], float], Vector]  # trending popularity of items at a time
    sequence_bias: Callable[[Sequence[str]], Vector] | None = None  # the two-tower's item biases

    def for_candidates(self, item_ids: Sequence[str], at: float) -> Signals:
        """The signals of these candidates, ranked as of `at`."""
        return dataclasses.replace(
            self.signals,
            collaborative=self.collaborative(item_ids),
            trending=self.trending(item_ids, at),
            sequence_bias=None if self.sequence_bias is None else self.sequence_bias(item_ids),
        )


def signals_for(
    profile: UserProfile,
    fitted: Fitted | None,
    topics: TopicModel,
    config: RankingConfig,
    every_component: bool = False,
) -> Learned:
    """The signals learned from the log, for one profile (computed once per request). A signal
    whose weight is 0 is left out unless `every_component` (the self-tuning tries other weights)."""
    recent = profile.recent
    cooccurrence = None if fitted is None else fitted.cooccurrence
    # only the nonzero scores: a Learned is remembered per profile, and the dense scores cover
    # every item the co-occurrence model knows (up to the whole catalogue)
    scored, scored_values = np.zeros(0, dtype=np.intp), np.zeros(0)
    followers: list[str] = []
    if cooccurrence is not None:
        pairs = [(r.item_id, r.weight if config.collaborative_negatives_push else 1.0) for r in recent]
        scored, scored_values = cooccurrence.nonzero_scores(pairs, config.collaborative_half_life_events)
        best = strongest(scored_values, config.collaborative_candidates)
        items = cooccurrence.items
        followers = [items[i] for i in scored[best[scored_values[best] > 0]].tolist()]

    def collaborative(item_ids: Sequence[str]) -> Vector:
        if cooccurrence is None or not len(scored):
            return np.zeros(len(item_ids))
        index = cooccurrence.item_index
        wanted = np.array([index.get(i, -1) for i in item_ids], dtype=np.intp)
        at = np.minimum(np.searchsorted(scored, wanted), len(scored) - 1)
        return np.where(scored[at] == wanted, scored_values[at], 0.0)

    next_topics = None
    if fitted is not None and recent:
        probs = topics.assign(rows([r.vector for r in recent]))
        next_topics = fitted.transitions.predict(list(probs), config.transition_user_prior)

    def followed(item_id: str) -> list[tuple[RecentEvent, float]]:
        """The recent events ``item_id`` often follows, by their share of its score."""
        if cooccurrence is None:
            return []
        half_life = config.collaborative_half_life_events
        shares = [
            (r, 0.5 ** (position / half_life) * cooccurrence.edge(r.item_id, item_id))
            for position, r in enumerate(recent)
        ]
        total = sum(share for _, share in shares)
        return sorted(((r, share / total) for r, share in shares if share > 0), key=lambda p: -p[1])

    def trending(item_ids: Sequence[str], at: float) -> Vector:
        if fitted is None or not (config.trending_boost or every_component):
            return np.zeros(len(item_ids))
        return fitted.item_times.trending(item_ids, at, config.trending_window_seconds)

    query, bias = None, None
    two_tower = None if fitted is None else fitted.two_tower
    if two_tower is not None and (config.sequence_boost or every_component):
        query = two_tower.query([r.vector for r in recent if r.item_id])
        bias = two_tower.biases if query is not None else None
    signals = Signals(next_topics=next_topics, followed=followed, sequence_query=query)
    return Learned(signals, collaborative, followers, trending, bias)


def strongest(values: Vector, k: int) -> npt.NDArray[np.intp]:
    """Positions of the `k` largest values, largest first; ties at the cut: the lower position
    first. `top_k_columns`' partition, then a sort of the `k` only (a full sort of thousands of
    scores cost more than the rest of `signals_for`)."""
    k = min(k, len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    chosen = top_k_columns(values[np.newaxis], k)[0]  # ascending positions
    best: npt.NDArray[np.intp] = chosen[np.argsort(-values[chosen], kind="stable")]
    return best
