"""Driftwise itself under the offline protocol: the serving code, replayed on a split.

For one phase (see ``protocol``):

1. Each user's training interactions, in time order, become events (rating -> event type as in
   ``driftwise.datasets.movielens``) applied one by one with ``UserProfile.apply``: the code the
   profile service runs. Event vectors are the items' encoder vectors; topic assignments come from
   the ``TopicModel``.
2. What serving learns from the event log is fitted on the same training data: item co-occurrence
   (collaborative signal), topic transitions, popularity, and the sequence model when one is given.
3. Every catalogue item is scored with ``driftwise.model.ranking.score_items`` (the function
   ``Recommend`` uses on its candidates) as of the time of the held-out interaction: the request
   time. The protocol removes seen items and ranks.

Scores are kept per component (layers, topics, collaborative, sequence, popularity) so weights
can be tuned on validation and ablations cost one weighted sum each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from driftwise.datasets.movielens import event_type
from driftwise.evaluation.protocol import Interaction, Phase, ScoreFn, Split
from driftwise.model.collaborative import SequentialCoOccurrence
from driftwise.model.config import InterestModelConfig, RankingConfig
from driftwise.model.events import Event
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import COMPONENTS, Signals, promote_new_items, score_items
from driftwise.model.topics import Matrix, TopicModel, normalize_rows
from driftwise.model.transitions import TopicTransitions

# user -> that user's sequence-model query (d,), or None: computed by the caller for one phase
SequenceQueries = Mapping[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Components:
    """Per user and item, each score component before weighting (float32, users x items)."""

    users: tuple[str, ...]
    parts: dict[str, npt.NDArray[np.float32]]
    split: Split
    is_new: npt.NDArray[np.bool_]  # (n_items,) no interaction in the phase's training data
    ranking: RankingConfig
    # depth -> (users, n_items) the candidates Recommend would retrieve with that many hits per layer
    retrieved: dict[int, npt.NDArray[np.bool_]] = field(default_factory=dict)

    def score_fn(self, weights: Mapping[str, float], depth: int | None = None) -> ScoreFn:
        """Weighted sum of the components, then new items promoted as ranking does. With ``depth``,
        only the items retrieved at that depth can rank (the rest are put below them): the
        serving path, which scores its retrieved candidates instead of the whole catalogue."""
        row = {u: i for i, u in enumerate(self.users)}
        active = [(self.parts[name], w) for name, w in weights.items() if w]
        n_items = self.split.n_items

        def score(user_id: str, history: Sequence[str]) -> npt.NDArray[np.float64]:
            i = row[user_id]
            total = np.zeros(n_items)
            for part, w in active:
                total += w * part[i]
            unseen = np.ones(n_items, dtype=bool)
            unseen[[self.split.item_index[h] for h in history]] = False
            eligible = unseen if depth is None else unseen & self.retrieved[depth][i]
            scores = promote_new_items(
                total, self.is_new, eligible, self.ranking.new_item_slots, self.ranking.new_item_position
            )
            if depth is None:
                return scores
            return np.where(eligible, scores, scores.min() - (scores.max() - scores.min()) - 1.0)

        return score


def interaction_event(e: Interaction) -> Event:
    rating = 3.0 if e.rating is None else e.rating  # no rating: an ordinary view
    return Event(f"{e.user_id}-{e.seq}", e.user_id, event_type(rating), e.time, e.item_id)


class DriftwiseUnderTest:
    """Replays a split's phase through the interest model and scores the catalogue for every user."""

    def __init__(
        self,
        split: Split,
        item_vectors: npt.ArrayLike,
        topics: TopicModel,
        interest: InterestModelConfig,
        ranking: RankingConfig,
    ) -> None:
        self.split = split
        self.vectors: Matrix = normalize_rows(item_vectors)
        if self.vectors.shape[0] != split.n_items:
            raise ValueError(f"{self.vectors.shape[0]} item vectors for {split.n_items} items")
        self.topics = topics
        self.interest = interest
        self.ranking = ranking
        self.item_topics = topics.assign(self.vectors)

    def replay(self, phase: Phase) -> dict[str, UserProfile]:
        """Each user's profile after their training events, applied in time order."""
        profiles: dict[str, UserProfile] = {}
        dimension = self.vectors.shape[1]
        for e in self.split.training(phase):
            profile = profiles.get(e.user_id)
            if profile is None:
                profile = profiles[e.user_id] = UserProfile.new(
                    e.user_id, self.interest, dimension, self.topics.size
                )
            i = self.split.item_index[e.item_id]
            profile.apply(
                interaction_event(e), self.vectors[i], self.item_topics[i], "", self.interest, e.time
            )
        return profiles

    def fit_signals(
        self, phase: Phase, ranking: RankingConfig
    ) -> tuple[SequentialCoOccurrence, TopicTransitions, npt.NDArray[np.float64]]:
        """Co-occurrence, topic transitions and popularity learned from the phase's training data."""
        sequences: dict[str, list[str]] = {}
        for e in self.split.training(phase):
            sequences.setdefault(e.user_id, []).append(e.item_id)
        cooccurrence = SequentialCoOccurrence.fit(
            sequences.values(),
            self.split.items,
            window=ranking.cooccurrence_window,
            backward=ranking.cooccurrence_backward,
            popularity_exponent=ranking.cooccurrence_popularity_exponent,
            neighbours=ranking.cooccurrence_neighbours,
            vectors=self.vectors,
        )
        index = self.split.item_index
        transitions = TopicTransitions.fit(
            (self.item_topics[[index[i] for i in seq]] for seq in sequences.values()), self.topics.size
        )
        counts = np.bincount(
            [index[i] for seq in sequences.values() for i in seq], minlength=self.split.n_items
        ).astype(np.float64)
        popularity = np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
        return cooccurrence, transitions, popularity

    def components(
        self,
        phase: Phase,
        sequence_queries: SequenceQueries | None = None,
        ranking: RankingConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
        retrieval_depths: Sequence[int] = (),
    ) -> Components:
        """Every score component for every evaluated user of a phase, as of their target's time;
        with ``retrieval_depths``, also what Recommend's retrieval would find at each depth."""
        ranking = ranking or self.ranking
        profiles = self.replay(phase)
        cooccurrence, transitions, popularity = self.fit_signals(phase, ranking)
        targets = self.split.validation_events if phase == "validation" else self.split.test_events
        users = tuple(u for u in self.split.users if u in targets)
        parts = {name: np.zeros((len(users), self.split.n_items), dtype=np.float32) for name in COMPONENTS}
        retrieved = {d: np.zeros((len(users), self.split.n_items), dtype=bool) for d in retrieval_depths}
        histories = self.split.histories(phase)
        for row, user in enumerate(users):
            profile = profiles[user]
            recent = profile.recent  # newest first
            signals = Signals(
                popularity=popularity,
                collaborative=cooccurrence.scores(
                    [(r.item_id, r.weight if ranking.collaborative_negatives_push else 1.0) for r in recent],
                    ranking.collaborative_half_life_events,
                ),
                sequence_query=None if sequence_queries is None else _as_float64(sequence_queries.get(user)),
                next_topics=transitions.predict(
                    [self.item_topics[self.split.item_index[r.item_id]] for r in recent],
                    ranking.transition_user_prior,
                ),
            )
            scored = score_items(
                profile,
                self.vectors,
                self.topics,
                at=targets[user].time,
                config=ranking,
                topic_temperature=self.interest.topic_temperature,
                signals=signals,
                item_topics=self.item_topics,
            )
            if scored is not None:
                for name in COMPONENTS:
                    parts[name][row] = scored.components[name]
            if retrieved:
                seen = np.array([self.split.item_index[i] for i in histories[user]], dtype=np.intp)
                for depth, found in retrieved.items():
                    found[row] = self.retrieve(profile, signals.collaborative, seen, depth, ranking)
            if progress is not None:
                progress(row + 1, len(users))
        return Components(users, parts, self.split, popularity <= 0, ranking, retrieved)

    def retrieve(
        self,
        profile: UserProfile,
        collaborative: npt.NDArray[np.float64] | None,
        seen: npt.NDArray[np.intp],
        depth: int,
        ranking: RankingConfig,
    ) -> npt.NDArray[np.bool_]:
        """(n_items,) the candidates of ``Engine.recommend``: the ``depth`` unseen items nearest to
        each layer's direction (an exact search, as FLAT), plus the ``collaborative_candidates``
        items with the best positive co-occurrence score, less the seen ones."""
        found = np.zeros(self.split.n_items, dtype=bool)
        directions = [
            d for s in profile.layers.values() if (d := s.direction(ranking.negative_max_push)) is not None
        ]
        if directions:
            sims = self.vectors @ np.stack(directions).T  # (n_items, layers)
            sims[seen] = -np.inf
            k = min(depth, self.split.n_items - len(seen))
            if k > 0:
                found[np.argpartition(-sims, k - 1, axis=0)[:k].ravel()] = True
        if collaborative is not None and ranking.collaborative_candidates:
            k = min(ranking.collaborative_candidates, len(collaborative))
            best = np.argpartition(-collaborative, k - 1)[:k]
            found[best[collaborative[best] > 0]] = True
        found[seen] = False
        return found


def _as_float64(vector: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float64] | None:
    return None if vector is None else vector.astype(np.float64)
