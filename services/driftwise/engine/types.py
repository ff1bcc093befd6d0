"""What the engine takes and gives: plain data, no gRPC (api/convert.py maps messages to these)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from driftwise.model.ranking import Ranked
from driftwise.model.refit import Refitted
from driftwise.model.topic_history import HistoryPoint
from driftwise.observability.recent import LatencySummary
from driftwise.storage.event_log import Interaction, UserRow
from driftwise.storage.vector_store import StoredItem


class LearnedState(enum.IntEnum):
    """How complete the learned signals a list was ranked with were. Numbers match
    driftwise.v1.LearnedModelsState."""

    CURRENT = 1  # fitted on the log as of the last periodic refit
    REFITTING = 2  # a saved or quick fit of part of the log, while a full refit runs
    NONE = 3  # no learned models: layers, topics and popularity only


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to upsert, as the API gave it."""

    item_id: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    category: str = ""
    create_time: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The text that is encoded: title, description and tags."""
        parts = [self.title, self.description, ", ".join(self.tags)]
        return ". ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Ack:
    event_id: str
    duplicate: bool
    profile_version: int


@dataclass(frozen=True, slots=True)
class RecommendQuery:
    user_id: str
    count: int = 10
    categories: tuple[str, ...] = ()
    created_after: float | None = None
    created_before: float | None = None
    exclude_item_ids: tuple[str, ...] = ()
    include_seen: bool = False
    diversity: float = 0.0
    as_of: float | None = None
    # a preview of another softmax temperature for the topic weights (None: the server's)
    topic_temperature: float | None = None
    shown: tuple[str, ...] = ()  # items on earlier pages (page_token): excluded like exclude_item_ids


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an item was ranked, in words: its topic's label and one sentence for people
    (`ranking.explain`), made with the topics it was ranked with."""

    topic: str
    summary: str


@dataclass(frozen=True, slots=True)
class Recommendations:
    ranked: list[Ranked]
    items: dict[str, StoredItem]
    explanations: dict[str, Explanation]  # by item id, one per ranked item
    recommendation_id: str
    profile_version: int
    cold_start: bool
    more: bool = False  # Recommend: whether more items pass the request (another page exists)
    learned: LearnedState = LearnedState.CURRENT  # how complete the learned signals were


# -- what InsightService reads (engine/insights.py) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemHit:
    """An item found near a vector, with its cosine similarity to it."""

    item: StoredItem
    similarity: float


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: list[StoredItem]  # in item id order
    more: bool  # whether items follow the last one
    total: int  # items in the catalogue


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[UserRow]  # most recently active first
    more: bool
    total: int  # users with events


@dataclass(frozen=True, slots=True)
class Following:
    """An item chosen after another, with its share of what followed it (co-occurrence)."""

    item: StoredItem
    share: float


@dataclass(frozen=True, slots=True)
class ItemDetail:
    item: StoredItem
    neighbours: list[ItemHit]  # nearest first, the item left out
    followed_by: list[Following]  # strongest first; none before a refit, or in a cluster
    recent: list[Interaction]  # newest first, user ids as callers know them ("" if pseudonymised)
    positive_events: int


@dataclass(frozen=True, slots=True)
class TopicHistory:
    points: list[HistoryPoint]  # oldest first
    labels: Sequence[str]  # of the topics the points' indices name


@dataclass(frozen=True, slots=True)
class Dependency:
    """Whether a server Driftwise depends on answers, where it is, and a line for people."""

    up: bool
    address: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ServerStats:
    items: int
    users: int
    events: int
    events_per_second: float  # acknowledged, over the last minute
    recommend_latency: LatencySummary
    encoder: Dependency
    vector_store: Dependency
    encoder_model: str
    embedding_dimension: int
    refitted: Refitted | None
    started_at: float
    role: str
