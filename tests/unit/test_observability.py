"""Tracing configuration from the standard OTEL_* variables, and the metrics collector."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from driftwise.inference.encoder import EncoderStats
from driftwise.model.events import EventType, Layer
from driftwise.model.online_quality import OnlineQuality
from driftwise.model.ranking.explanations import Reason
from driftwise.observability.metrics import StateCollector
from driftwise.observability.tracing import otlp_traces_endpoint, triton_trace_args


def test_tracing_is_off_unless_an_otlp_endpoint_is_set() -> None:
    assert otlp_traces_endpoint({}) is None
    assert otlp_traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}) == (
        "http://collector:4318/v1/traces"
    )
    # the traces-specific variable wins and is used as is; OTEL_SDK_DISABLED turns everything off
    both = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/t",
    }
    assert otlp_traces_endpoint(both) == "http://b/t"
    assert otlp_traces_endpoint({**both, "OTEL_SDK_DISABLED": "true"}) is None


def test_triton_traces_where_the_services_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert triton_trace_args() == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    args = triton_trace_args()
    assert "--trace-config=mode=opentelemetry" in args
    assert "--trace-config=opentelemetry,url=collector:4318/v1/traces" in args  # Triton: no scheme
    assert "--trace-config=rate=1" in args


def test_state_collector_exposes_encoder_batches_as_a_histogram() -> None:
    stats = EncoderStats(
        texts=10, cache_hits=4, requests=3, sent_texts=6, batch_sizes=Counter({1: 1, 2: 1, 3: 1})
    )
    registry = CollectorRegistry()
    registry.register(StateCollector(encoder_stats=lambda: stats, mirror=lambda: (2, 0.5)))
    text = generate_latest(registry).decode()
    assert "driftwise_encoder_cache_hits_total 4.0" in text
    assert 'driftwise_encoder_batch_size_bucket{le="2"} 2.0' in text
    assert 'driftwise_encoder_batch_size_bucket{le="+Inf"} 3.0' in text
    assert "driftwise_encoder_batch_size_sum 6.0" in text
    assert "driftwise_interest_mirror_pending_users 2.0" in text
    assert "driftwise_interest_mirror_lag_seconds 0.5" in text


def test_state_collector_exposes_online_quality_as_counters() -> None:
    quality = OnlineQuality()
    quality.issued(100.0, [(Reason.INTEREST, Layer.DEEP), (Reason.POPULAR, None)])
    quality.feedback(EventType.PURCHASE, (Reason.INTEREST, Layer.DEEP), 1, 100.0)
    registry = CollectorRegistry()
    registry.register(StateCollector(quality=quality.by_reason_and_layer))
    text = generate_latest(registry).decode()
    assert 'driftwise_recommended_items_total{layer="deep",reason="interest"} 1.0' in text
    assert 'driftwise_recommended_items_total{layer="none",reason="popular"} 1.0' in text
    assert 'driftwise_feedback_total{kind="like",layer="deep",reason="interest"} 1.0' in text
    assert 'driftwise_feedback_total{kind="skip",layer="none",reason="popular"} 0.0' in text
