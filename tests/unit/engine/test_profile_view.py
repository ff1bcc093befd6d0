"""What GetProfile shows: a profile explained with its topics (engine/profile_view.py)."""

from __future__ import annotations

import numpy as np
import pytest

from driftwise.engine.profile_view import explain_profile
from driftwise.model.config import InterestModelConfig
from driftwise.model.events import Event, EventType, Layer
from driftwise.model.profile import UserProfile
from driftwise.model.topics import TopicModel

CONFIG = InterestModelConfig()
TOPICS = TopicModel(
    ("jazz", "space", "cooking"), np.eye(3, dtype=np.float32), 0.1, [["Kind of Blue"], [], []]
)


def liked(profile: UserProfile, event_id: str, topic: int, time: float) -> None:
    vector = np.eye(3, dtype=np.float32)[topic]
    probs = np.full(3, 0.05)
    probs[topic] = 0.9
    profile.apply(
        Event(event_id, "u", EventType.LIKE, time, item_id=event_id), vector, probs, event_id, CONFIG, time
    )


def test_layers_show_their_heaviest_topics_first_with_their_examples() -> None:
    profile = UserProfile.new("u", CONFIG, 3, 3)
    for i in range(3):
        liked(profile, f"j{i}", 0, 1000.0 + i)
    liked(profile, "s0", 1, 1010.0)

    view = explain_profile(profile, TOPICS, tau=0.1, at=1010.0, top_topics=2, recent=3)

    assert [layer.layer for layer in view.layers] == sorted(Layer)
    deep = view.layers[-1]
    assert [t.label for t in deep.top_topics] == ["jazz", "space"]  # two asked for, heaviest first
    assert deep.top_topics[0].weight > deep.top_topics[1].weight
    assert deep.top_topics[0].examples == ("Kind of Blue",)
    assert deep.last_event_time == 1010.0
    assert [r.event_id for r in view.recent] == ["s0", "j2", "j1"]  # newest first, three asked for
    assert (view.version, view.event_count) == (4, 4)


def test_mass_is_decayed_to_the_time_asked_about_and_an_empty_layer_names_no_topics() -> None:
    profile = UserProfile.new("u", CONFIG, 3, 3)
    empty = explain_profile(profile, TOPICS, tau=0.1, at=0.0, top_topics=3, recent=10)
    assert all(layer.top_topics == () and layer.mass == 0 for layer in empty.layers)

    liked(profile, "j0", 0, 1000.0)
    surface = Layer.SURFACE
    half_life = CONFIG.half_life_seconds[surface]
    now = explain_profile(profile, TOPICS, tau=0.1, at=1000.0, top_topics=3, recent=10)
    later = explain_profile(profile, TOPICS, tau=0.1, at=1000.0 + half_life, top_topics=3, recent=10)
    mass_now = {v.layer: v.mass for v in now.layers}[surface]
    mass_later = {v.layer: v.mass for v in later.layers}[surface]
    assert mass_now > 0
    assert mass_later == pytest.approx(mass_now / 2)  # one half-life later
