"""What GetProfile and WatchProfile show: a profile explained with the topics it was built with,
as plain data (api/convert.py only maps it to messages)."""

from __future__ import annotations

from dataclasses import dataclass

from driftwise.model.events import Layer
from driftwise.model.profile import RecentEvent, UserProfile
from driftwise.model.topics import TopicModel


@dataclass(frozen=True, slots=True)
class TopicShare:
    """One topic of a layer: its weight (softmax at the topic temperature), its raw affinity and
    the titles of the items nearest to it."""

    label: str
    weight: float
    affinity: float
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LayerView:
    layer: Layer
    half_life_seconds: float
    mass: float  # decayed to the time asked about
    last_event_time: float | None
    top_topics: tuple[TopicShare, ...]  # heaviest first; none for a layer without evidence


@dataclass(frozen=True, slots=True)
class ProfileView:
    version: int
    updated_at: float
    event_count: int
    layers: tuple[LayerView, ...]  # surface, middle, deep
    recent: tuple[RecentEvent, ...]  # newest first


def explain_profile(
    profile: UserProfile, topics: TopicModel, *, tau: float, at: float, top_topics: int, recent: int
) -> ProfileView:
    """The profile at time `at`: each layer's `top_topics` heaviest topics and the `recent`
    newest events."""
    layers = []
    for layer, state in sorted(profile.layers.items()):
        shares: tuple[TopicShare, ...] = ()
        if state.mass > 0:
            weights, affinity = state.topic_weights(tau), state.topic_affinity()
            shares = tuple(
                TopicShare(topics.labels[k], float(weights[k]), float(affinity[k]), topics.examples[k])
                for k in weights.argsort()[::-1][:top_topics]
            )
        layers.append(LayerView(layer, state.half_life_seconds, state.mass_at(at), state.last_time, shares))
    return ProfileView(
        profile.version,
        profile.updated_at,
        profile.event_count,
        tuple(layers),
        tuple(profile.recent[:recent]),
    )
