"""What one serving process counts about its own work, always on, in memory, since it started
(InsightService.GetServerStats and GetOnlineQuality; the Prometheus counters read the same):
Recommend's latency (measured by the RankingService around the engine call), the events it
acknowledged, and the online quality of the lists it issued. The embedded engine and a cluster's
ranking replica each hold one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from driftwise.engine.types import Ack
from driftwise.model.events import Event
from driftwise.model.impressions import ImpressionMatch, Matched, Why
from driftwise.model.online_quality import OnlineQuality
from driftwise.model.ranking import Ranked
from driftwise.observability.recent import LatencyWindow, RateWindow


@dataclass
class ServingStats:
    started_at: float = field(default_factory=time.time)
    recommend_latency: LatencyWindow = field(default_factory=LatencyWindow)  # the last 5 minutes
    acked_events: RateWindow = field(default_factory=RateWindow)  # the last minute
    quality: OnlineQuality = field(default_factory=OnlineQuality)

    def issued(self, ranked: Sequence[Ranked], at: float) -> list[Why]:
        """A list Recommend issued at `at`: counted; returns each item's reason and layer (what
        the list's impression remembers)."""
        why: list[Why] = [(r.reason, r.layer) for r in ranked]
        self.quality.issued(at, why)
        return why

    def acknowledged(self, events: int) -> None:
        self.acked_events.add(events)

    def feedback(self, event: Event, ack: Ack, matched: Matched) -> None:
        """A StreamFeedback event recorded: acknowledged, and counted (count_feedback) unless it
        is a resend (a duplicate)."""
        self.acknowledged(1)
        if not ack.duplicate:
            self.count_feedback(event, matched)

    def count_feedback(self, event: Event, matched: Matched) -> None:
        """Feedback on its item when its impression id matched a list issued here with the item
        in it (SHOWN); anything else is not counted."""
        if matched.match is ImpressionMatch.SHOWN and matched.why is not None:
            self.quality.feedback(event.type, matched.why, matched.position, matched.issued_at)
