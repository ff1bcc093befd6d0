"""Retries, backoff and deadlines against a real (scripted) gRPC server."""

from __future__ import annotations

import itertools
import threading
import time

import grpc
import pytest
from client_test_support import Outcome, ScriptedServer

from driftwise_client import (
    AsyncDriftwiseClient,
    DeadlineExceeded,
    DriftwiseClient,
    InvalidArgument,
    RetryPolicy,
    Unavailable,
    feedback_request,
    new_event,
)
from driftwise_client.v1 import common_pb2

UNAVAILABLE = Outcome(grpc.StatusCode.UNAVAILABLE, "dependency down")
FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


def test_a_read_is_retried_on_unavailable_and_aborted(scripted: ScriptedServer) -> None:
    scripted.script.fail("Recommend", UNAVAILABLE, Outcome(grpc.StatusCode.ABORTED, "conflict"))
    with DriftwiseClient(scripted.target, retry=FAST) as client:
        assert client.recommend("u1").items[0].item_id == "i1"
    assert scripted.script.count("Recommend") == 3


def test_idempotent_writes_are_retried(scripted: ScriptedServer) -> None:
    scripted.script.fail("IngestEvents", UNAVAILABLE)
    scripted.script.fail("UpsertItems", UNAVAILABLE, UNAVAILABLE)
    with DriftwiseClient(scripted.target, retry=FAST) as client:
        acks = client.ingest_events([new_event("u1", "LIKE", item_id="i1")]).acks
        assert len(acks) == 1
        assert client.upsert_items([common_pb2.Item(item_id="i1", title="t")]).upserted_count == 1
    assert scripted.script.count("IngestEvents") == 2 and scripted.script.count("UpsertItems") == 3


def test_events_without_ids_are_not_retried(scripted: ScriptedServer) -> None:
    """Without event_id the server cannot deduplicate: a retry could apply an event twice."""
    scripted.script.fail("IngestEvents", UNAVAILABLE)
    with DriftwiseClient(scripted.target, retry=FAST) as client, pytest.raises(Unavailable) as info:
        client.ingest_events([common_pb2.Event(user_id="u1", type=common_pb2.EVENT_TYPE_LIKE, item_id="i1")])
    assert info.value.attempts == 1 and scripted.script.count("IngestEvents") == 1


def test_other_codes_are_not_retried_and_keep_their_details(scripted: ScriptedServer) -> None:
    scripted.script.fail(
        "Recommend",
        Outcome(
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad request",
            violations=[("count", "must be between 0 and 100")],
        ),
    )
    with DriftwiseClient(scripted.target, retry=FAST) as client, pytest.raises(InvalidArgument) as info:
        client.recommend("u1", count=500)
    assert info.value.field_violations == [("count", "must be between 0 and 100")]
    assert info.value.message == "bad request" and info.value.details.domain == "test"
    assert scripted.script.count("Recommend") == 1


def test_attempts_are_bounded(scripted: ScriptedServer) -> None:
    scripted.script.always("GetProfile", UNAVAILABLE)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    with DriftwiseClient(scripted.target, retry=policy) as client, pytest.raises(Unavailable) as info:
        client.get_profile("u1")
    assert info.value.attempts == 3 and scripted.script.count("GetProfile") == 3
    assert info.value.message == "dependency down"


def test_backoff_grows_with_jitter_between_attempts(scripted: ScriptedServer) -> None:
    scripted.script.always("GetProfile", UNAVAILABLE)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.08, backoff_multiplier=2.0, max_backoff=1.0)
    with DriftwiseClient(scripted.target, retry=policy) as client, pytest.raises(Unavailable):
        client.get_profile("u1")
    times = [c.time for c in scripted.script.calls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 4
    for retry, gap in enumerate(gaps, start=1):  # each delay is in [0, 0.08 * 2**(retry-1)] (+ call time)
        assert gap <= 0.08 * 2 ** (retry - 1) + 0.1


def test_retries_never_go_beyond_the_overall_deadline(scripted: ScriptedServer) -> None:
    scripted.script.always("Recommend", UNAVAILABLE)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.1)
    started = time.monotonic()
    with (
        DriftwiseClient(scripted.target, retry=policy, timeout=0.6) as client,
        pytest.raises((Unavailable, DeadlineExceeded)) as info,  # the last attempt may run out of time
    ):
        client.recommend("u1")
    elapsed = time.monotonic() - started
    assert elapsed < 0.75, "no retry starts after the deadline"
    assert 3 <= info.value.attempts < 1000


def test_a_slow_attempt_is_cut_by_attempt_timeout_and_retried(scripted: ScriptedServer) -> None:
    scripted.script.fail("Recommend", Outcome(delay=1.5))  # the first attempt hangs, then succeeds late
    policy = RetryPolicy(attempt_timeout=0.3, initial_backoff=0.01)
    started = time.monotonic()
    with DriftwiseClient(scripted.target, retry=policy, timeout=5) as client:
        assert client.recommend("u1").recommendation_id == "rec-1"
    assert time.monotonic() - started < 1.2 and scripted.script.count("Recommend") == 2


def test_deadline_exceeded_without_attempt_timeout_is_final(scripted: ScriptedServer) -> None:
    scripted.script.always("Recommend", Outcome(delay=1.0))
    with DriftwiseClient(scripted.target, retry=FAST) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            client.recommend("u1", timeout=0.3)  # per-call override of the default deadline
        assert 0.25 < time.monotonic() - started < 0.6
    assert info.value.attempts == 1 and scripted.script.count("Recommend") == 1


def test_streams_are_never_retried(scripted: ScriptedServer) -> None:
    scripted.script.fail("StreamFeedback", UNAVAILABLE)
    with DriftwiseClient(scripted.target, retry=FAST) as client:
        stream = client.stream_feedback()
        with pytest.raises(Unavailable):
            stream.exchange(feedback_request(new_event("u1", "LIKE", item_id="i1", impression_id="r")))
        stream.cancel()
        with client.stream_feedback() as stream:  # a new stream works
            assert stream.exchange(
                feedback_request(new_event("u1", "LIKE", item_id="i1", impression_id="r"))
            ).recorded
    assert scripted.script.count("StreamFeedback") == 2


def test_a_read_survives_a_server_restart_on_the_same_port(scripted: ScriptedServer) -> None:
    """The server goes away, comes back on the same port 1 s later: the retried read succeeds."""
    port = scripted.port
    with DriftwiseClient(
        scripted.target, retry=RetryPolicy(max_attempts=30, max_backoff=0.3), timeout=10
    ) as client:
        assert client.recommend("u1").items  # connected once
        scripted.stop()
        restart = threading.Timer(1.0, lambda: scripted.start(port))
        restart.start()
        started = time.monotonic()
        try:
            assert client.recommend("u1").items
        finally:
            restart.join()
        assert time.monotonic() - started >= 0.9, "the read waited for the server"
    assert scripted.port == port


def test_wait_until_ready_times_out_as_unavailable() -> None:
    with DriftwiseClient("127.0.0.1:9", timeout=1) as client, pytest.raises(Unavailable):
        client.wait_until_ready(0.3)


async def test_async_retries_and_bounds(scripted: ScriptedServer) -> None:
    scripted.script.fail("Recommend", UNAVAILABLE, UNAVAILABLE)
    scripted.script.always("GetProfile", UNAVAILABLE)
    async with AsyncDriftwiseClient(scripted.target, retry=FAST) as client:
        assert (await client.recommend("u1")).recommendation_id == "rec-1"
        with pytest.raises(Unavailable) as info:
            await client.get_profile("u1")
    assert scripted.script.count("Recommend") == 3
    assert info.value.attempts == FAST.max_attempts == scripted.script.count("GetProfile")


async def test_async_deadline_and_attempt_timeout(scripted: ScriptedServer) -> None:
    scripted.script.fail("Recommend", Outcome(delay=1.0), Outcome(delay=1.0))
    async with AsyncDriftwiseClient(scripted.target, retry=FAST) as client:
        with pytest.raises(DeadlineExceeded):
            await client.recommend("u1", timeout=0.2)
        client.retry = RetryPolicy(attempt_timeout=0.2, initial_backoff=0.01)
        assert (await client.recommend("u1", timeout=5)).items
    assert scripted.script.count("Recommend") == 3


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(attempt_timeout=0)
    with pytest.raises(ValueError):
        DriftwiseClient("127.0.0.1:1", timeout=0)
    assert RetryPolicy.disabled().max_attempts == 1
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.3)
    assert all(
        0 <= policy.backoff(n) <= min(0.3, 0.1 * 2 ** (n - 1)) for n in range(1, 10) for _ in range(50)
    )
