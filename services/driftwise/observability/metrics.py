"""Prometheus metrics: per-RPC counts and latencies, streams, encoder, caches, lag
(docs/interest-model.md §9).

Each app owns a `CollectorRegistry` (several apps can run in one process: the tests do). RPCs are
measured by `MetricsInterceptor` (api/interceptors/metrics.py); everything that already counts
for itself (the encoder's stats, the item cache, the interest mirror) is read at scrape time by
`StateCollector`, so those classes stay free of Prometheus. Exposed over HTTP by `serve_metrics`
on `observability.metrics_port`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from driftwise.inference.coverage import UnrepresentedTexts
from driftwise.inference.encoder import EncoderStats
from driftwise.model.impressions import Why
from driftwise.model.online_quality import FEEDBACK_KINDS, Counts
from driftwise.model.refit import Refitted

# seconds: a cached Recommend takes a few ms, an IngestEvents batch of 1,000 up to a second
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class StateCollector(Collector):
    """Reads the app's own counters at scrape time. Each source is a callable, so a process
    without a part (a cluster role has no embedded engine) simply passes none."""

    def __init__(
        self,
        encoder_stats: Callable[[], EncoderStats] | None = None,
        item_cache: Callable[[], tuple[int, int, int]] | None = None,  # hits, misses, size
        mirror: Callable[[], tuple[int, float]] | None = None,  # pending users, lag seconds
        triton: Callable[[], tuple[bool, int]] | None = None,  # local Triton: up, restarts
        refit: Callable[[], Refitted | None] | None = None,  # the engine's last refit
        unrepresented: Callable[[], UnrepresentedTexts] | None = None,  # texts the model cannot read
        quality: Callable[[], dict[Why, Counts]] | None = None,  # issued items and their feedback
    ) -> None:
        self._refit = refit
        self._quality = quality
        self._encoder_stats = encoder_stats
        self._unrepresented = unrepresented
        self._triton = triton
        self._item_cache = item_cache
        self._mirror = mirror

    def collect(self) -> Iterator[Any]:
        if self._encoder_stats is not None:
            stats = self._encoder_stats()
            yield _counter("driftwise_encoder_texts", "Texts asked of the encoder.", stats.texts)
            yield _counter(
                "driftwise_encoder_cache_hits", "Texts answered by the embedding cache.", stats.cache_hits
            )
            yield _counter(
                "driftwise_encoder_coalesced",
                "Texts answered by a request already queued or in flight.",
                stats.coalesced,
            )
            yield _counter("driftwise_encoder_requests", "Inference requests sent to Triton.", stats.requests)
            yield _histogram(
                "driftwise_encoder_batch_size", "Texts per Triton request.", stats.batch_sizes, BATCH_BUCKETS
            )
        if self._unrepresented is not None:
            unrepresented = self._unrepresented()
            family = CounterMetricFamily(
                "driftwise_encoder_unrepresented_texts",
                "Texts encoded although the model's vocabulary does not know at least "
                "triton.unknown_share_threshold of them (e.g. Chinese for MiniLM), by role.",
                labels=["model", "role"],
            )
            for role in ("passage", "query"):  # both from the start: rate() needs the zero
                family.add_metric([unrepresented.model, role], unrepresented.counts[role])
            yield family
        if self._triton is not None:
            up, restarts = self._triton()
            yield _gauge(
                "driftwise_local_triton_up",
                "1 while the supervised local Triton runs (0 from its death until it is ready again).",
                int(up),
            )
            yield _counter(
                "driftwise_local_triton_restarts", "Restarts of the local Triton after a death.", restarts
            )
        if self._item_cache is not None:
            hits, misses, size = self._item_cache()
            yield _counter("driftwise_item_cache_hits", "Item lookups answered by the cache.", hits)
            yield _counter("driftwise_item_cache_misses", "Item lookups read from Milvus.", misses)
            yield _gauge("driftwise_item_cache_items", "Items in the cache.", size)
        if self._mirror is not None:
            pending, lag = self._mirror()
            yield _gauge(
                "driftwise_interest_mirror_pending_users",
                "Users whose newest interest rows are not yet written to Milvus.",
                pending,
            )
            yield _gauge(
                "driftwise_interest_mirror_lag_seconds",
                "Age of the oldest profile change not yet written to Milvus (event log -> Milvus lag).",
                lag,
            )

        if self._refit is not None and (refitted := self._refit()) is not None:
            yield from _refit_metrics(refitted)
        if self._quality is not None:
            yield from quality_metrics(self._quality())


def quality_metrics(counts: dict[Why, Counts]) -> Iterator[Any]:
    """The online quality (driftwise.model.online_quality) as counters by the reason and layer each
    item was recommended for ("none": cold start) and, for feedback, its kind."""
    issued = CounterMetricFamily(
        "driftwise_recommended_items",
        "Items issued in Recommend lists, by the reason and layer each was recommended for.",
        labels=["reason", "layer"],
    )
    feedback = CounterMetricFamily(
        "driftwise_feedback",
        "Feedback on items shown in this server's Recommend lists (ImpressionMatch SHOWN), by the "
        "item's reason and layer and the kind of feedback: click (CLICK, VIEW), like (LIKE, SHARE, "
        "COMMENT, PURCHASE), skip (SKIP), dislike (DISLIKE, HIDE).",
        labels=["reason", "layer", "kind"],
    )
    for (reason, layer), c in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        labels = [reason.name.lower(), "none" if layer is None else layer.name.lower()]
        issued.add_metric(labels, c.issued)
        for kind, n in zip(FEEDBACK_KINDS, (c.clicks, c.likes, c.skips, c.dislikes), strict=True):
            feedback.add_metric([*labels, kind.name.lower()], n)
    yield issued
    yield feedback


def _refit_metrics(refitted: Refitted) -> Iterator[Any]:
    yield _gauge("driftwise_refit_events", "Events the last refit learned from.", refitted.events)
    yield _gauge(
        "driftwise_refit_seconds", "Duration of the last refit, self-tuning included.", refitted.seconds
    )
    report = refitted.tuning
    status = GaugeMetricFamily(
        "driftwise_tuning_status", "1 for the last self-tuning's outcome.", labels=["status"]
    )
    status.add_metric([report.status.name.lower()], 1)
    yield status
    yield _gauge("driftwise_tuning_held_out_users", "Users with a held-out event.", report.held_out_users)
    hr = GaugeMetricFamily(
        "driftwise_tuning_hr_at_10",
        "HR@10 of the held-out events, by half (tune: the choice was made on it; report: the "
        "other users) and settings (configured or chosen).",
        labels=["half", "settings"],
    )
    ndcg = GaugeMetricFamily(
        "driftwise_tuning_ndcg_at_10",
        "NDCG@10 of the held-out events, as hr_at_10.",
        labels=["half", "settings"],
    )
    for half, settings, quality in (
        ("tune", "configured", report.defaults_tune),
        ("tune", "chosen", report.chosen_tune),
        ("report", "configured", report.defaults_report),
        ("report", "chosen", report.chosen_report),
    ):
        if quality is not None:
            hr.add_metric([half, settings], quality.hr)
            ndcg.add_metric([half, settings], quality.ndcg)
    yield hr
    yield ndcg
    chosen = GaugeMetricFamily(
        "driftwise_tuning_chosen_value",
        "Value served for each ranking setting the self-tuning changed (booleans as 0/1).",
        labels=["setting"],
    )
    for name, value in report.chosen.items():
        chosen.add_metric([name], float(value))
    yield chosen


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _histogram(
    name: str, documentation: str, counts: dict[int, int], buckets: tuple[int, ...]
) -> HistogramMetricFamily:
    cumulative = [(str(b), sum(n for size, n in counts.items() if size <= b)) for b in buckets]
    cumulative.append(("+Inf", sum(counts.values())))
    total = sum(size * n for size, n in counts.items())
    return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=total)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> tuple[Any, int]:
    """Start the /metrics HTTP endpoint in a thread; returns (server, bound port)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_port)
