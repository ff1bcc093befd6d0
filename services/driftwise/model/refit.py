"""One refit: what the server learns from its event log and catalogue, in one pure function.

`refit` tunes the ranking settings on held-out events (`driftwise.model.tuning`, when enabled),
then fits co-occurrence and topic transitions on the whole log with the settings it chose. The
engine runs it off the event loop and swaps the result in whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from driftwise.model.config import InterestModelConfig, RankingConfig, TuningConfig
from driftwise.model.events import Event
from driftwise.model.learned import Fitted
from driftwise.model.topics import TopicModel
from driftwise.model.tuning import Catalogue, Tuner, TuningReport, TuningStatus, apply_choice


@dataclass(frozen=True)
class Refitted:
    """What Recommend serves with until the next refit."""

    fitted: Fitted | None  # None: nothing logged yet
    ranking: RankingConfig  # the ranking settings served: the configured ones, as tuned
    tuning: TuningReport
    events: int  # events in the log when it was read
    seconds: float
    finished_at: float = field(default_factory=time.time)


def refit(
    catalogue: Catalogue,
    events_by_user: Mapping[str, Sequence[Event]],
    events: int,
    topics: TopicModel,
    interest: InterestModelConfig,
    ranking: RankingConfig,
    tuning: TuningConfig,
    candidates_per_layer: Callable[[RankingConfig], int],
) -> Refitted:
    started = time.perf_counter()
    if tuning.enabled:
        tuner = Tuner(catalogue, events_by_user, topics, interest, tuning, candidates_per_layer)
        report = tuner.tune(ranking)
    else:
        report = TuningReport(TuningStatus.DISABLED, {})
    served = apply_choice(ranking, report)
    index = catalogue.index
    sequences = []
    for user_events in events_by_user.values():
        known = [e for e in user_events if e.item_id in index]
        in_time = sorted(range(len(known)), key=lambda i: (known[i].time, i))  # ties: arrival order
        sequences.append([known[i].item_id for i in in_time])
    fitted = None
    if sequences and catalogue.item_ids:
        item_topics = dict(zip(catalogue.item_ids, topics.assign(catalogue.vectors, unit=True), strict=True))
        vectors = dict(zip(catalogue.item_ids, catalogue.vectors, strict=True))
        fitted = Fitted.fit(sequences, item_topics, topics, served, vectors)
    return Refitted(fitted, served, report, events, time.perf_counter() - started)
