"""A user's topic weights over time (InsightService.GetTopicHistory): the user's events applied
in the order they were applied (docs/interest-model.md §2), and each layer's heaviest topics read
after some of them (§3.3), the last event always among them.

The events between two points are applied in one `UserProfile.apply_many`, which gives the profile
that applying them one at a time gives, so the cost is one pass over the events plus
O(points x layers x K) for the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from driftwise.model.config import InterestModelConfig
from driftwise.model.events import Event, Layer
from driftwise.model.layers import Matrix
from driftwise.model.profile import UserProfile


@dataclass(frozen=True, slots=True)
class TopicAt:
    topic: int  # index into the TopicModel's labels
    weight: float  # dynamic weight: softmax(affinity / tau)
    affinity: float  # per unit of mass, in [-1, 1]


@dataclass(frozen=True, slots=True)
class LayerAt:
    layer: Layer
    mass: float  # evidence at the event's time
    top: tuple[TopicAt, ...]  # heaviest first; none without evidence


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    event_id: str
    time: float  # the event's
    layers: tuple[LayerAt, ...]  # surface, middle, deep


def sample_points(events: int, max_points: int) -> list[int]:
    """Indices of the events to show: all of them if they fit, else `max_points` spread evenly
    from the first to the last (which is always included)."""
    if events <= max_points:
        return list(range(events))
    if max_points == 1:
        return [events - 1]
    return sorted({round(k * (events - 1) / (max_points - 1)) for k in range(max_points)})


def topic_history(
    profile: UserProfile,
    events: Sequence[Event],
    vectors: Matrix,
    topic_probs: Matrix,
    texts: Sequence[str],
    config: InterestModelConfig,
    *,
    max_points: int,
    top_topics: int,
    tau: float,
) -> list[HistoryPoint]:
    """Apply `events` (with their unit vectors, soft topics and texts) to `profile`, a new one,
    and read each layer's `top_topics` heaviest topics after the sampled events, oldest first."""
    points = []
    done = 0
    for index in sample_points(len(events), max_points):
        upto = index + 1
        profile.apply_many(
            events[done:upto], vectors[done:upto], topic_probs[done:upto], texts[done:upto], config, 0.0
        )
        done = upto
        event = events[index]
        points.append(HistoryPoint(event.event_id, event.time, _layers(profile, event.time, top_topics, tau)))
    return points


def _layers(profile: UserProfile, at: float, top_topics: int, tau: float) -> tuple[LayerAt, ...]:
    layers = []
    for layer, state in sorted(profile.layers.items()):
        top: tuple[TopicAt, ...] = ()
        if state.mass > 0:
            weights, affinity = state.topic_weights(tau), state.topic_affinity()
            heaviest = weights.argsort()[::-1][:top_topics]  # as GetProfile orders them
            top = tuple(TopicAt(int(k), float(weights[k]), float(affinity[k])) for k in heaviest)
        layers.append(LayerAt(layer, state.mass_at(at), top))
    return tuple(layers)
