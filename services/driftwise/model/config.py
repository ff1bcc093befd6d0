"""Tunable parameters of the interest model, with documented defaults.

These are configuration, not constants: `driftwise.settings.Settings.interest` holds one of these
and can be overridden by environment variables or a settings file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftwise.model.events import EventType, Layer

HOUR = 3600.0
DAY = 24 * HOUR

# A general-purpose taxonomy, embedded zero-shot by the encoder (docs/interest-model.md §3.1): the topics of a
# catalogue too small to learn them from, and the names of learned topics (`learn_topics`).
DEFAULT_TOPICS: tuple[str, ...] = (
    "action and adventure",
    "animation and cartoons for kids",
    "comedy and humor",
    "crime and gangsters",
    "documentary and true stories",
    "drama and relationships",
    "fantasy and magic",
    "history and war",
    "horror and monsters",
    "music and musicals",
    "mystery and detective",
    "romance and love",
    "science fiction and space",
    "thriller and suspense",
    "western and cowboys",
    "sports and competition",
    "family and children",
    "politics and society",
    "science and technology",
    "travel and nature",
    "cooking and food",
    "health and fitness",
    "business and finance",
    "computers and programming",
    "art and design",
    "religion and spirituality",
    "psychology and self-help",
    "fashion and beauty",
    "home and garden",
    "pets and animals",
    "cars and vehicles",
    "games and puzzles",
    "poetry and literature",
)


class InterestModelConfig(BaseModel):
    """Parameters of docs/interest-model.md §2-§3: layer half-lives, event weights, topic temperatures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life_seconds: dict[Layer, float] = Field(
        default_factory=lambda: {Layer.SURFACE: 1 * HOUR, Layer.MIDDLE: 7 * DAY, Layer.DEEP: 180 * DAY},
        description="Half-life of each layer's exponential decay.",
    )
    event_weights: dict[EventType, float] = Field(
        default_factory=lambda: {
            EventType.PURCHASE: 3.0,
            EventType.LIKE: 2.0,
            EventType.SHARE: 2.0,
            EventType.COMMENT: 1.5,
            EventType.CLICK: 1.0,
            EventType.VIEW: 0.6,
            EventType.SEARCH: 0.4,
            EventType.SKIP: -0.3,
            EventType.DISLIKE: -1.5,
            EventType.HIDE: -2.0,
            EventType.STATED_INTEREST: 2.0,
        },
        description="Signed weight per event type: purchase > like/share > comment > click > view "
        "> search > 0 > negatives. A stated interest (cold start) goes to the deep layer only.",
    )
    dwell_saturation_seconds: float = Field(
        120.0, gt=0, description="Dwell time at which a positive event's weight boost saturates."
    )
    dwell_max_boost: float = Field(
        1.0, ge=0, description="Largest relative weight boost from dwell time (1.0 doubles it)."
    )
    topic_temperature: float = Field(
        0.1,
        gt=0,
        description="tau: temperature of the softmax that turns topic affinities into "
        "dynamic weights; smaller is more peaked.",
    )
    assignment_temperature: float = Field(
        0.05,
        gt=0,
        description="Temperature of the soft assignment of a vector to topics "
        "(softmax over cosine similarity to topic centroids).",
    )
    recent_events: int = Field(20, ge=1, le=200, description="Events a profile remembers in full.")
    topics: tuple[str, ...] = Field(
        DEFAULT_TOPICS,
        min_length=2,
        description="The taxonomy: labels that name learned topics, and the topics themselves while "
        "the catalogue is too small to learn them from.",
    )
    learned_topics: int = Field(
        20,
        ge=0,
        le=200,
        description="Topics learned from the catalogue at a refit (k-means over the item vectors); "
        "0: the taxonomy's labels are the topics.",
    )
    items_per_learned_topic: int = Field(
        25,
        ge=2,
        description="Items the catalogue needs per learned topic: a smaller catalogue learns fewer "
        "topics, and below 4 of them keeps the taxonomy.",
    )
    topics_relearn_change: float = Field(
        0.25,
        gt=0,
        description="Topics are learned again when the catalogue's size has changed by this share "
        "since they were learned (every profile is then rebuilt from the log).",
    )

    @field_validator("event_weights", "half_life_seconds", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any, info: Any) -> Any:
        """A partial mapping overrides the defaults it names and keeps the others (a settings file
        that tunes one weight must not have to repeat them all)."""
        if not isinstance(value, dict):
            return value
        default = cls.model_fields[info.field_name].get_default(call_default_factory=True)
        merged = {int(k): v for k, v in default.items()}
        merged.update({int(k) if str(k).isdigit() else k: v for k, v in value.items()})
        return merged

    @model_validator(mode="after")
    def _complete(self) -> InterestModelConfig:
        missing_layers = set(Layer) - set(self.half_life_seconds)
        missing_types = set(EventType) - set(self.event_weights)
        if missing_layers or missing_types:
            raise ValueError(f"missing half-lives {missing_layers} or event weights {missing_types}")
        if any(h <= 0 for h in self.half_life_seconds.values()):
            raise ValueError("half-lives must be positive")
        return self

    def weight(self, event_type: EventType, dwell_seconds: float = 0.0) -> float:
        """w(type, dwell): the signed weight of an event; dwell only boosts positive events."""
        base = self.event_weights[event_type]
        if base > 0 and dwell_seconds > 0:
            base *= 1.0 + self.dwell_max_boost * min(1.0, dwell_seconds / self.dwell_saturation_seconds)
        return base


class RankingConfig(BaseModel):
    """Parameters of the ranking (docs/interest-model.md §7)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer_priors: dict[Layer, float] = Field(
        default_factory=lambda: {Layer.SURFACE: 1.0, Layer.MIDDLE: 1.0, Layer.DEEP: 1.0},
        description="Weight of each layer when it has full evidence.",
    )
    evidence_scale: float = Field(
        3.0,
        gt=0,
        description="Layer mass at which a layer gets 63% of its prior weight "
        "(weight = prior * (1 - exp(-mass / evidence_scale))).",
    )
    # Defaults of the score weights: tuned on ml-latest-small validation (docs/evaluation.md).
    layer_boost: float = Field(
        1.0, ge=0, description="Weight of the evidence-weighted similarity to the layers' queries."
    )
    topic_boost: float = Field(
        0.2, ge=0, description="Weight of the user's dynamic weight for the item's topic in the score."
    )
    collaborative_boost: float = Field(
        1.0,
        ge=0,
        description="Weight of co-occurrence with the user's recent events "
        "(driftwise.model.collaborative.SequentialCoOccurrence, fitted on the event log).",
    )
    collaborative_half_life_events: float = Field(
        2.0, gt=0, description="Recent events, newest first, weigh 0.5 ** (position / this)."
    )
    collaborative_negatives_push: bool = Field(
        True,
        description="A rejected recent item pulls its followers down (True) or, like any other "
        "consumed item, up (False: where a rejection still means the user watched it).",
    )
    cooccurrence_window: int = Field(
        10, ge=1, le=100, description="Items within this many positions of each other co-occur."
    )
    cooccurrence_backward: float = Field(
        0.5, ge=0, description="Weight of 'i came before j' relative to 'j came after i'."
    )
    cooccurrence_popularity_exponent: float = Field(
        0.2, ge=0, le=1, description="Co-occurrence is divided by (n_i * n_j) ** this (0.5 = cosine)."
    )
    cooccurrence_neighbours: int = Field(200, ge=1, le=5000, description="Followers kept per item.")
    collaborative_candidates: int = Field(
        200,
        ge=0,
        le=5000,
        description="Items retrieved by co-occurrence with recent events, beside "
        "the layers' vector searches.",
    )
    refit_seconds: float = Field(
        600.0,
        gt=0,
        description="How often the co-occurrence and transition models are refitted on "
        "the event log when new events arrived.",
    )
    sequence_boost: float = Field(
        0.0,
        ge=0,
        description="Weight of the next-item two-tower's score (needs one trained: "
        "two_tower_seconds); 0 as configured, the self-tuning gives it weight where it pays.",
    )
    two_tower_seconds: float = Field(
        15.0,
        ge=0,
        description="Training time budget of the next-item two-tower at each refit (0: none is "
        "trained). Trained when the self-tuning may weigh it or sequence_boost is set.",
    )
    negative_max_push: float = Field(
        0.5,
        ge=0,
        description="Rejections move a layer's query away from what was rejected by at most this "
        "times the length of its positive evidence (bounded effect of negatives).",
    )
    new_item_slots: int = Field(
        1,
        ge=0,
        le=10,
        description="How many items nobody has interacted with yet get lifted into each list "
        "(the best-scoring ones), so new items can be discovered.",
    )
    new_item_position: int = Field(
        10, ge=1, description="1-based list position the lifted new items are placed at (or above)."
    )
    transition_mix: float = Field(
        0.3,
        ge=0,
        le=1,
        description="How far the surface layer's query leans towards the topic centroid the "
        "transition model predicts next (0 = off).",
    )
    transition_user_prior: float = Field(
        5.0,
        gt=0,
        description="Strength of the global transition matrix as a prior on a user's own transitions.",
    )
    popularity_boost: float = Field(
        0.03, ge=0, description="Weight of the item's popularity (0..1, log-scaled) in the score."
    )
    trending_boost: float = Field(
        0.0,
        ge=0,
        description="Weight of the item's popularity in the window before the request "
        "(trending_window_seconds; 0..1, log-scaled among the candidates). 0 unless tuned.",
    )
    trending_window_seconds: float = Field(
        30 * DAY, gt=0, description="The window of the trending popularity, ending at the request time."
    )
    freshness_half_life_seconds: float = Field(
        365 * DAY, gt=0, description="Half-life of the freshness prior used for cold start."
    )
    candidates_per_layer: int = Field(
        50,
        ge=10,
        le=5000,
        description="Items each layer's vector search retrieves for scoring (beside the "
        "co-occurrence followers). `driftwise eval`'s serving-path rows: HR@10 0.131 at 50, "
        "0.133 at 100 and 200, 0.128 ranking the whole catalogue (standard error 0.013).",
    )
    evidence_per_item: int = Field(2, ge=0, le=10, description="Past events shown per explanation.")
    rejected_similarity: float = Field(
        0.9,
        ge=-1,
        le=1,
        description="Items at least this cosine-similar to an item the user recently rejected "
        "(DISLIKE, SKIP, ... among the profile's recent events) are near-duplicates of it: "
        "Recommend leaves them out, Rank puts them last.",
    )
    cold_start_diversity: float = Field(
        0.3, ge=0, le=1, description="Diversity used for users without a profile."
    )


class TuningConfig(BaseModel):
    """How a deployment tunes its ranking settings on its own log at each refit
    (driftwise.model.tuning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Tune at each refit (off: serve the ranking settings as given).")
    min_users: int = Field(
        100, ge=2, description="Held-out users needed to tune; below this the defaults are served."
    )
    max_users: int = Field(
        2000, ge=2, description="At most this many held-out users (chosen by a hash of their id)."
    )
    min_history: int = Field(
        2, ge=1, description="Item events a user needs before the held-out one to be held out."
    )
    rounds: int = Field(2, ge=1, le=5, description="Passes over the knobs and the weights.")
