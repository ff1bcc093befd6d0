"""Self-tuning: each deployment picks its ranking settings on its own event log.

At a refit, every user's most recent item event is held out (`holdouts`). The rest of the log is
what the server would have known just before it: profiles replayed from it (`UserProfile`), the
learned models fitted on it (`Fitted`), popularity counted from it. For each held-out user the
candidates are found as Recommend finds them (the nearest unseen items to each layer's direction,
exactly, as a FLAT index; plus the co-occurrence followers of the recent events) and scored by the
serving functions (`signals_for`, `score_candidates`, `Scored.final`); a hit is the held-out item
in the top `count`.

The held-out users are split in two by a hash of their id: settings are chosen on one half (the
"tune" half) and reported on the other (the "report" half), so the figure shows whether the choice
generalises to users it was not chosen on; a choice that does worse than the defaults there
(NDCG@10) is not served (`NO_GAIN`). The search is bounded: one pass over the structural knobs
(each value tried with the others fixed), then coordinate ascent over a grid of component weights,
then the structural pass and the weights again. Too few held-out users: the defaults.

Free-text events (searches, stated interests) are left out of the replay: encoding them again
would cost the encoder a call per refit. What they add to a profile is the same for every setting.
"""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from driftwise.model.config import DAY, InterestModelConfig, RankingConfig, TuningConfig
from driftwise.model.events import Event
from driftwise.model.learned import Fitted, signals_for
from driftwise.model.profile import UserProfile
from driftwise.model.ranking import (
    COMPONENTS,
    WEIGHT_FIELDS,
    Candidate,
    component_weights,
    final_scores,
    score_candidates,
)
from driftwise.model.topics import TopicModel
from driftwise.sequence.two_tower import TwoTowerConfig, TwoTowerScorer, fit_two_tower

# knob -> values tried; the component weights are tried over WEIGHT_GRID
STRUCTURE: dict[str, tuple[object, ...]] = {
    "collaborative_negatives_push": (True, False),
    "collaborative_half_life_events": (1.0, 2.0, 4.0),
    "transition_mix": (0.0, 0.3, 0.6),
    "cooccurrence_window": (5, 10, 20),
    "cooccurrence_popularity_exponent": (0.0, 0.2, 0.5),
    "cooccurrence_backward": (0.0, 0.5, 1.0),
    # at least one: items nobody has touched yet must stay discoverable, and held-out events, being
    # events about items, can hardly show what a slot is worth (at 0, no list held a new item)
    "new_item_slots": (1, 2),
    "trending_window_seconds": (7 * DAY, 30 * DAY, 180 * DAY),
}
WEIGHT_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# the knobs a new fit of co-occurrence needs; the others only change how it is read or weighed
REFIT_KNOBS = {"cooccurrence_window", "cooccurrence_popularity_exponent", "cooccurrence_backward"}
SCORING_KNOBS = {"new_item_slots"}  # applied after scoring: the scored candidates are reused
TUNED = {*STRUCTURE, *WEIGHT_FIELDS.values()}


class TuningStatus(enum.IntEnum):
    """Which settings a refit serves. Numbers match driftwise.v1.SelfTuningStatus."""

    TUNED = 1  # the chosen ones
    TOO_FEW_USERS = 2  # the configured ones: too few held-out users to tell settings apart
    DISABLED = 3  # the configured ones: tuning.enabled is off
    PENDING = 4  # just started: the last tuning's choice (or the configured ones) until it runs
    NO_GAIN = 5  # the configured ones: the choice did worse than them on the report half


@dataclass(frozen=True)
class Catalogue:
    """The items a deployment can recommend: ids and their unit vectors (float32 rows)."""

    item_ids: tuple[str, ...]
    vectors: npt.NDArray[np.float32]
    titles: tuple[str, ...] = ()  # what learned topics are shown with

    @property
    def index(self) -> dict[str, int]:
        return {item_id: i for i, item_id in enumerate(self.item_ids)}


@dataclass(frozen=True)
class HeldOut:
    user_id: str
    history: list[Event]  # the user's item events before the held-out one, in arrival order
    target: str
    at: float  # the held-out event's time: ranking happens as of it


@dataclass(frozen=True)
class Quality:
    users: int
    hr: float
    ndcg: float


@dataclass(frozen=True)
class TuningReport:
    """What a self-tuning chose and how well defaults and choice did on both halves."""

    status: TuningStatus
    chosen: dict[str, bool | int | float]  # knob -> value served, where it differs from the defaults
    rejected: dict[str, bool | int | float] = field(default_factory=dict)  # NO_GAIN: what was not served
    defaults_tune: Quality | None = None
    chosen_tune: Quality | None = None
    defaults_report: Quality | None = None
    chosen_report: Quality | None = None
    trials: int = 0
    seconds: float = 0.0
    held_out_users: int = 0

    def summary(self) -> str:
        if self.chosen_report is None or self.defaults_report is None:
            return f"self-tuning: {self.status.name.lower()} ({self.held_out_users} held-out users)"
        if self.status is TuningStatus.TUNED:
            outcome = f"chose {self.chosen}"
        else:
            outcome = f"kept the defaults: the choice {self.rejected} did worse on the report half"
        return (
            f"self-tuning: tuned on {self.chosen_tune.users if self.chosen_tune else 0} users, "
            f"reported on {self.chosen_report.users}: HR@10 {self.defaults_report.hr:.4f} -> "
            f"{self.chosen_report.hr:.4f}, NDCG@10 {self.defaults_report.ndcg:.4f} -> "
            f"{self.chosen_report.ndcg:.4f} (defaults -> chosen); {outcome}; "
            f"{self.trials} trials in {self.seconds:.1f} s"
        )


def holdouts(
    events_by_user: Mapping[str, Sequence[Event]], known: Mapping[str, int], min_history: int, max_users: int
) -> list[HeldOut]:
    """Each user's most recent item event (latest time; among equal times the one logged last)
    held out, with the item events before it; users with fewer than ``min_history`` of those are
    left out, and at most ``max_users`` are kept (the same ones at every refit: by a hash)."""
    found = []
    for user_id, events in events_by_user.items():
        usable = [e for e in events if e.item_id in known]
        if len(usable) <= min_history:
            continue
        last = max(range(len(usable)), key=lambda i: (usable[i].time, i))
        history = usable[:last] + usable[last + 1 :]
        target = usable[last]
        if target.item_id in {e.item_id for e in history}:
            continue  # seen items are never recommended: nothing to learn from a repeat
        found.append(HeldOut(user_id, history, target.item_id, target.time))
    found.sort(key=lambda h: _hash(h.user_id))
    return found[:max_users]


def _hash(user_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Outcome:
    """One held-out user's scored candidates, kept small: the components, not the vectors."""

    components: dict[str, npt.NDArray[np.float64]]
    popularity: npt.NDArray[np.float64]
    rejected: npt.NDArray[np.bool_]
    target: int  # the held-out item's row among the candidates; -1: not among them

    @classmethod
    def missed(cls) -> _Outcome:
        return cls({}, np.zeros(0), np.zeros(0, dtype=bool), -1)

    def place(self, config: RankingConfig) -> int | None:
        """The held-out item's 0-based place in the list ranked with ``config``'s weights (the
        stable order of `mmr_order` at diversity 0); None if it is not a candidate."""
        if self.target < 0:
            return None
        total = np.zeros(len(self.popularity))
        for name, weight in component_weights(config).items():
            if weight:
                total = total + weight * self.components[name]
        final = final_scores(total, self.popularity, self.rejected, config)
        t = self.target
        return int(np.sum(final > final[t])) + int(np.sum(final[:t] == final[t]))


@dataclass
class _Replayed:
    """What the server knew just before the held-out events: profiles, counts, sequences."""

    profiles: dict[str, UserProfile]
    seen: dict[str, npt.NDArray[np.intp]]
    seen_sets: dict[str, set[int]]
    popularity: npt.NDArray[np.float64]  # (n_items,) log-scaled positive events, as Recommend
    sequences: list[list[str]]  # every user's item ids in time order, held-out events removed
    positives: list[tuple[str, float]]  # (item_id, time) of the positive events, held-out ones removed


class Tuner:
    """Scores ranking settings on held-out events; `tune` searches them."""

    def __init__(
        self,
        catalogue: Catalogue,
        events_by_user: Mapping[str, Sequence[Event]],
        topics: TopicModel,
        interest: InterestModelConfig,
        options: TuningConfig,
        candidates_per_layer: Callable[[RankingConfig], int],
    ) -> None:
        self.catalogue = catalogue
        self.index = catalogue.index
        self.topics = topics
        self.interest = interest
        self.options = options
        self.candidates_per_layer = candidates_per_layer
        self.item_topics = topics.assign(catalogue.vectors, unit=True)
        self.held = holdouts(events_by_user, self.index, options.min_history, options.max_users)
        halves = [_hash(h.user_id) % 2 for h in self.held]
        self.tune_half = [h for h, side in zip(self.held, halves, strict=True) if side == 0]
        self.report_half = [h for h, side in zip(self.held, halves, strict=True) if side == 1]
        self.replayed = self._replay(events_by_user)
        self.two_tower: TwoTowerScorer | None = None  # trained by `train_two_tower`
        self._fitted: dict[tuple[object, ...], Fitted] = {}
        self._nearest_rows: dict[str, list[int]] = {}
        pop = self.replayed.popularity
        self._candidates = [  # every item as a candidate, made once
            Candidate(item_id, catalogue.vectors[r], float(pop[r]))
            for r, item_id in enumerate(catalogue.item_ids)
        ]

    def _replay(self, events_by_user: Mapping[str, Sequence[Event]]) -> _Replayed:
        held = {h.user_id: h for h in self.held}
        profiles, seen = {}, {}
        counts = np.zeros(len(self.index))
        sequences, positives = [], []
        for user_id, events in events_by_user.items():
            h = held.get(user_id)
            kept = [e for e in events if e.item_id in self.index]
            if h is not None:
                kept = h.history
            rows = np.array([self.index[e.item_id] for e in kept], dtype=np.intp)
            for e, row in zip(kept, rows, strict=True):
                if self.interest.weight(e.type) > 0:
                    counts[row] += 1
                    positives.append((e.item_id, e.time))
            in_time = sorted(range(len(kept)), key=lambda i: (kept[i].time, i))
            sequences.append([kept[i].item_id for i in in_time])
            if h is None or not len(rows):
                continue
            dimension = self.catalogue.vectors.shape[1]
            profile = UserProfile.new(user_id, self.interest, dimension, self.topics.size)
            profile.apply_many(
                kept,
                self.catalogue.vectors[rows].astype(np.float64),
                self.item_topics[rows],
                ["" for _ in kept],
                self.interest,
                h.at,
            )
            profiles[user_id], seen[user_id] = profile, rows
        top = counts.max() if len(counts) else 0.0
        popularity = np.log1p(counts) / (math.log1p(top) if top > 0 else 1.0)
        seen_sets = {u: set(rows.tolist()) for u, rows in seen.items()}
        return _Replayed(profiles, seen, seen_sets, popularity, sequences, positives)

    def train_two_tower(self, seconds: float) -> TwoTowerScorer | None:
        """Train the next-item two-tower on the replayed log (the held-out events left out, so the
        holdout judges it fairly); the refit serves this one, so what was tuned is what serves.
        Not with too few held-out users: nothing could give it weight."""
        if seconds > 0 and self.enough_users:
            config = TwoTowerConfig(seconds=seconds)
            self.two_tower = fit_two_tower(
                self.replayed.sequences, self.catalogue.item_ids, self.catalogue.vectors, config
            )
            self._fitted.clear()
        return self.two_tower

    def fitted(self, config: RankingConfig) -> Fitted:
        key = tuple(getattr(config, k) for k in sorted(REFIT_KNOBS))
        if key not in self._fitted:
            item_topics = dict(zip(self.catalogue.item_ids, self.item_topics, strict=True))
            self._fitted[key] = Fitted.fit(
                self.replayed.sequences,
                item_topics,
                self.topics,
                config,
                self.catalogue,
                self.replayed.positives,
                self.two_tower,
            )
        return self._fitted[key]

    def _nearest(self, users: Sequence[HeldOut], config: RankingConfig) -> dict[str, list[int]]:
        """Per user, the unseen rows nearest to each layer's direction (the layers' searches),
        for all users in one matrix product. They depend on the profile alone: computed once."""
        missing = [h for h in users if h.user_id not in self._nearest_rows]
        depth = self.candidates_per_layer(config)
        vectors = self.catalogue.vectors
        for start in range(0, len(missing), 256):
            block = missing[start : start + 256]
            directions = [_directions(self.replayed.profiles[h.user_id], config) for h in block]
            if not any(directions):
                continue
            sims = vectors @ np.concatenate([np.stack(d) for d in directions if d]).T.astype(np.float32)
            column = 0
            for h, d in zip(block, directions, strict=True):
                own = sims[:, column : column + len(d)]
                column += len(d)
                own[self.replayed.seen[h.user_id]] = -np.inf
                k = min(depth, len(vectors) - len(self.replayed.seen[h.user_id]))
                nearest = np.argpartition(-own, k - 1, axis=0)[:k].T.ravel() if k > 0 and d else ()
                self._nearest_rows[h.user_id] = [int(r) for r in nearest]
        return self._nearest_rows

    def score(self, users: Sequence[HeldOut], config: RankingConfig) -> list[_Outcome]:
        """Each user's candidates, found and scored as Recommend does, with the held-out item's
        row among them (-1: retrieval missed it)."""
        fitted = self.fitted(config)
        nearest = self._nearest(users, config)
        out: list[_Outcome] = []
        for h in users:
            profile = self.replayed.profiles.get(h.user_id)
            if profile is None or not nearest.get(h.user_id):
                out.append(_Outcome.missed())
                continue
            learned = signals_for(profile, fitted, self.topics, config, every_component=True)
            seen = self.replayed.seen_sets[h.user_id]
            followers = [
                r for i in learned.followers if (r := self.index.get(i)) is not None and r not in seen
            ]
            candidates = [self._candidates[r] for r in dict.fromkeys([*nearest[h.user_id], *followers])]
            signals = learned.for_candidates([c.item_id for c in candidates], h.at)
            scored = score_candidates(
                profile,
                candidates,
                self.topics,
                at=h.at,
                config=config,
                topic_temperature=self.interest.topic_temperature,
                signals=signals,
            )
            if scored is None:
                out.append(_Outcome.missed())
                continue
            ids = [c.item_id for c in scored.candidates]
            target = ids.index(h.target) if h.target in ids else -1
            out.append(_Outcome(scored.scores.components, scored.popularity, scored.rejected, target))
        return out

    def quality(self, outcomes: Sequence[_Outcome], config: RankingConfig, count: int = 10) -> Quality:
        """HR and NDCG at ``count`` of the held-out items, weighing the components by ``config``."""
        hits, gain = 0, 0.0
        for o in outcomes:
            place = o.place(config)
            if place is not None and place < count:
                hits += 1
                gain += 1.0 / math.log2(place + 2)
        n = len(outcomes)
        return Quality(n, hits / n if n else 0.0, gain / n if n else 0.0)

    @property
    def enough_users(self) -> bool:
        """Whether each half has enough held-out users to tell settings apart."""
        return min(len(self.tune_half), len(self.report_half)) >= self.options.min_users // 2

    def tune(self, defaults: RankingConfig) -> TuningReport:
        started = time.perf_counter()
        users = len(self.tune_half) + len(self.report_half)
        if not self.enough_users:
            return TuningReport(TuningStatus.TOO_FEW_USERS, {}, held_out_users=users)
        trials = 0
        cache: dict[tuple[object, ...], list[_Outcome]] = {}

        def value(config: RankingConfig) -> float:
            nonlocal trials
            trials += 1
            return self.quality(tuned_on(config), config).ndcg

        def tuned_on(config: RankingConfig) -> list[_Outcome]:
            key = tuple(getattr(config, k) for k in sorted(set(STRUCTURE) - SCORING_KNOBS))
            if key not in cache:
                cache[key] = self.score(self.tune_half, config)
            return cache[key]

        best_config, best = defaults, value(defaults)
        for _ in range(self.options.rounds):
            for knob, values in STRUCTURE.items():
                for v in values:
                    trial = best_config.model_copy(update={knob: v})
                    if (score := value(trial)) > best + 1e-9:
                        best, best_config = score, trial
            for name in COMPONENTS:
                if name == "sequence" and self.two_tower is None:
                    continue  # nothing to weigh
                for w in WEIGHT_GRID:
                    trial = best_config.model_copy(update={WEIGHT_FIELDS[name]: w})
                    if any(component_weights(trial).values()) and (score := value(trial)) > best + 1e-9:
                        best, best_config = score, trial
        chosen = {
            k: v for k, v in best_config.model_dump().items() if k in TUNED and v != getattr(defaults, k)
        }
        defaults_report = self.quality(self.score(self.report_half, defaults), defaults)
        chosen_report = self.quality(self.score(self.report_half, best_config), best_config)
        # the guard against a choice fitted to the tune half's noise: it must hold on the other half
        held = chosen_report.ndcg >= defaults_report.ndcg
        return TuningReport(
            TuningStatus.TUNED if held else TuningStatus.NO_GAIN,
            chosen if held else {},
            rejected={} if held else chosen,
            defaults_tune=self.quality(tuned_on(defaults), defaults),
            chosen_tune=self.quality(tuned_on(best_config), best_config),
            defaults_report=defaults_report,
            chosen_report=chosen_report,
            trials=trials,
            seconds=time.perf_counter() - started,
            held_out_users=users,
        )


def apply_choice(defaults: RankingConfig, report: TuningReport) -> RankingConfig:
    """The settings served after a tuning: the defaults with what it chose."""
    return defaults.model_copy(update=report.chosen) if report.chosen else defaults


def _directions(profile: UserProfile, config: RankingConfig) -> list[npt.NDArray[np.float64]]:
    return [d for s in profile.layers.values() if (d := s.direction(config.negative_max_push)) is not None]
