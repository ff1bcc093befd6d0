"""What a refit learns from the event log, and what it says about one profile's next items.

`LearnedModels` is fitted on the whole log (`fit_learned`) and swapped in whole by the engine, so
a request never sees half of one refit and half of another. `signals_for` turns it into the
per-request signals ranking weighs; `Recommend` and the self-tuning (`driftwise.model.tuning`)
both call it, so what is tuned is what is served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftwise.model.collaborative import SequentialCoOccurrence
from driftwise.model.config import RankingConfig
from driftwise.model.layers import Vector
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.ranking import Signals
from driftwise.model.topics import TopicModel
from driftwise.model.transitions import TopicTransitions


@dataclass(frozen=True)
class Fitted:
    """Item co-occurrence and topic transitions fitted on item sequences (time order)."""

    cooccurrence: SequentialCoOccurrence
    transitions: TopicTransitions

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[str]],
        item_topics: Mapping[str, Vector],
        topics: TopicModel,
        config: RankingConfig,
        vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
    ) -> Fitted:
        """`item_topics`: topic assignment per known item; `vectors` (unit rows per item id, the
        catalogue) give items nobody has touched text edges from their nearest interacted items."""
        items = sorted({i for seq in sequences for i in seq} | set(vectors or ()))
        matrix = None
        if vectors is not None and items:
            dimension = len(next(iter(vectors.values())))
            zero = np.zeros(dimension, dtype=np.float32)
            matrix = np.stack([vectors.get(i, zero) for i in items])
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
        return cls(cooccurrence, TopicTransitions.fit(topic_sequences, topics.size))


@dataclass(frozen=True, slots=True)
class Learned:
    """What the models learned from the log say about one profile's next items."""

    signals: Signals
    collaborative: Callable[[Sequence[str]], Vector]  # co-occurrence score of items (0 if unknown)
    followers: list[str]  # the items that most often follow the recent events: candidates


def signals_for(
    profile: UserProfile, fitted: Fitted | None, topics: TopicModel, config: RankingConfig
) -> Learned:
    """The signals learned from the log, for one profile (computed once per request)."""
    recent = profile.recent
    cooccurrence = None if fitted is None else fitted.cooccurrence
    scores = np.zeros(0)
    followers: list[str] = []
    if cooccurrence is not None:
        pairs = [(r.item_id, r.weight if config.collaborative_negatives_push else 1.0) for r in recent]
        scores = cooccurrence.scores(pairs, config.collaborative_half_life_events)
        k = min(config.collaborative_candidates, len(scores))
        best = np.argpartition(-scores, k - 1)[:k] if k else np.zeros(0, dtype=np.intp)
        followers = [cooccurrence.items[i] for i in best if scores[i] > 0]

    def collaborative(item_ids: Sequence[str]) -> Vector:
        if cooccurrence is None:
            return np.zeros(len(item_ids))
        index = cooccurrence.item_index
        return np.array([scores[index[i]] if i in index else 0.0 for i in item_ids])

    next_topics = None
    if fitted is not None and recent:
        probs = topics.assign(np.stack([r.vector for r in recent]))
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

    return Learned(Signals(next_topics=next_topics, followed=followed), collaborative, followers)
