"""A retried read outlives a real restart of the all-in-one server on the same port."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from client_test_support import REQUIRE_LIVE, LiveServer, catalogue, server_available

from driftwise_client import DriftwiseClient, RetryPolicy, new_event

pytestmark = pytest.mark.live


def test_a_read_retried_across_a_server_restart_sees_the_same_data(tmp_path: Path) -> None:
    if not server_available():
        if REQUIRE_LIVE:
            pytest.fail("the driftwise server package is not importable")
        pytest.skip("the driftwise server package is not importable")
    data = tmp_path / "data"
    first = LiveServer(data)
    first.start()
    second = LiveServer(data, port=first.port)
    failure: list[BaseException] = []

    def restart() -> None:
        try:
            second.start()
        except BaseException as exc:  # reported by the test below
            failure.append(exc)

    restarter = threading.Thread(target=restart)
    try:
        # the server is down for the whole restart (Triton included: ~10-30 s): retry for up to 4 min
        patient = RetryPolicy(max_attempts=10_000, initial_backoff=0.2, max_backoff=1.0)
        with DriftwiseClient(first.target, retry=patient, timeout=30) as client:
            client.upsert_items(catalogue()[:6])
            client.ingest_events([new_event("restart-user", "LIKE", item_id="movie-0")])
            assert client.get_profile("restart-user").version == 1

            first.stop()
            restarter.start()
            started = time.monotonic()
            profile = client.get_profile("restart-user", timeout=240)  # retried until it is back
            waited = time.monotonic() - started
        restarter.join()
        assert not failure, failure
        assert profile.version == 1 and profile.event_count == 1, "the data survived the restart"
        assert waited > 1.0, "the read really waited for the restarted server"
    finally:
        if restarter.is_alive():
            restarter.join()
        first.stop()
        second.stop()
