"""One refit: what the server learns from its event log and catalogue, in one pure function.

`refit` learns the topics from the catalogue when they are due (`topics_due`), trains the next-item
two-tower on the log without the held-out events and tunes the ranking settings on those events
(`driftwise.model.tuning`, when enabled), then fits co-occurrence and topic transitions on the
whole log with the settings it chose. The two-tower served is the one tuned with: trained once per
refit, within `ranking.two_tower_seconds`. The engine runs it off the event
loop and swaps the result in whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from driftwise.model.config import InterestModelConfig, RankingConfig, TuningConfig
from driftwise.model.events import Event
from driftwise.model.learned import Fitted
from driftwise.model.topics import TopicModel, learn_topics
from driftwise.model.tuning import Catalogue, Tuner, TuningReport, TuningStatus, apply_choice
from driftwise.sequence.two_tower import TwoTowerConfig, fit_two_tower


@dataclass(frozen=True)
class Refitted:
    """What Recommend serves with until the next refit."""

    fitted: Fitted | None  # None: nothing logged yet
    topics: TopicModel  # the topics it was fitted with: new ones when `topics_due`
    ranking: RankingConfig  # the ranking settings served: the configured ones, as tuned
    tuning: TuningReport
    events: int  # events in the log when it was read
    seconds: float
    finished_at: float = field(default_factory=time.time)


def topics_due(current: TopicModel, taxonomy: TopicModel, items: int, interest: InterestModelConfig) -> int:
    """How many topics to learn from a catalogue of `items` now (0: keep `current`).

    Learned the first time the catalogue is large enough (`items_per_learned_topic` per topic, at
    least 4 topics), then again when its size has changed by `topics_relearn_change`: new topics
    mean every profile is rebuilt from the log, so not at every refit."""
    k = min(interest.learned_topics, items // interest.items_per_learned_topic)
    if k < 4:
        return 0
    if current is taxonomy or not current.learned:
        return k
    changed = abs(items - current.items) / max(current.items, 1)
    return k if changed >= interest.topics_relearn_change else 0


def refit(
    catalogue: Catalogue,
    events_by_user: Mapping[str, Sequence[Event]],
    events: int,
    topics: TopicModel,
    interest: InterestModelConfig,
    ranking: RankingConfig,
    tuning: TuningConfig,
    candidates_per_layer: Callable[[RankingConfig], int],
    taxonomy: TopicModel | None = None,
    two_tower: bool = True,
) -> Refitted:
    """`topics`: those the profiles use now; `taxonomy`: the labels that name learned ones (None:
    topics are not learned); `two_tower`: False skips training one (a quick refit at start)."""
    started = time.perf_counter()
    if taxonomy is not None and (k := topics_due(topics, taxonomy, len(catalogue.item_ids), interest)):
        topics = learn_topics(catalogue.vectors, catalogue.titles, taxonomy, k)
    index = catalogue.index
    sequences = []
    for user_events in events_by_user.values():
        known = [e for e in user_events if e.item_id in index]
        in_time = sorted(range(len(known)), key=lambda i: (known[i].time, i))  # ties: arrival order
        sequences.append([known[i].item_id for i in in_time])
    seconds = ranking.two_tower_seconds if two_tower else 0.0
    trained = None
    if tuning.enabled:
        tuner = Tuner(catalogue, events_by_user, topics, interest, tuning, candidates_per_layer)
        trained = tuner.train_two_tower(seconds)
        report = tuner.tune(ranking)
    else:
        report = TuningReport(TuningStatus.DISABLED, {})
        if ranking.sequence_boost > 0 and seconds > 0:
            trained = fit_two_tower(sequences, catalogue.item_ids, catalogue.vectors, TwoTowerConfig(seconds))
    served = apply_choice(ranking, report)
    fitted = None
    if sequences and catalogue.item_ids:
        item_topics = dict(zip(catalogue.item_ids, topics.assign(catalogue.vectors, unit=True), strict=True))
        positives = [
            (e.item_id, e.time)
            for user_events in events_by_user.values()
            for e in user_events
            if e.item_id in index and interest.weight(e.type) > 0
        ]
        fitted = Fitted.fit(sequences, item_topics, topics, served, catalogue, positives, trained)
    return Refitted(fitted, topics, served, report, events, time.perf_counter() - started)
