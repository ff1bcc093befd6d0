"""bench/serving.py end to end in its --quick preset on Milvus Lite: the numbers come out sane.

It starts its own Triton and `driftwise serve` subprocesses, so it runs as a subprocess too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from driftwise.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_quick_serving_bench_on_lite(tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "serving.py"),
            "--quick",
            "--stores",
            "lite",
            "--profile",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,  # a smoke test of the script, not of its speed
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "| store | items |" in result.stdout  # the table was printed

    report = json.loads(out.read_text())
    assert report["machine"] and report["composition"]
    [row] = report["rows"]
    assert row["store"] == "lite" and row["items"] == row["real_items"] + row["synthetic_items"] > 0
    assert row["events"] > 0 and row["ingest_events_per_s"] > 0
    assert row["personalized_share"] > 0.5  # users with histories get personalised lists
    assert [level["concurrency"] for level in row["recommend"]] == [1, 8, 32]
    for level in row["recommend"]:
        assert level["requests"] > 0 and level["qps"] > 0
        assert 0 < level["p50_ms"] <= level["p99_ms"]
        # CPU per call of the processes under test, from /proc: the server's and Milvus Lite's
        # (its own process); Triton encodes nothing here, the load generator is reported apart
        cpu = level["cpu"]
        assert 0 < cpu["server_ms"] < 1000 and 0 < cpu["milvus_ms"] < 1000
        assert cpu["triton_ms"] is not None and 0 <= cpu["triton_ms"] < cpu["server_ms"]
        assert cpu["client_ms"] is not None and cpu["client_ms"] >= 0
        assert cpu["milvus_background_ms"] is not None and cpu["milvus_background_ms"] >= 0
    assert "CPU ms per Recommend" in result.stdout
    # resident memory per process after the load levels (the Lite process apart from the server's)
    assert {"server", "milvus", "triton"} <= set(row["memory"])
    assert all(0 < m["rss_mb"] <= m["peak_mb"] for m in row["memory"].values())
    # --profile: py-spy samples of the server at each level, grouped; shares sum to 1
    assert [p["concurrency"] for p in row["profile"]] == [1, 8, 32]
    for profile in row["profile"]:
        if profile["error"]:  # py-spy missing or unable to attach (no ptrace): said so, not hidden
            assert profile["samples"] == 0 and "py-spy" in profile["error"]
            continue
        assert set(profile["groups"]) == {"grpc.aio", "pymilvus", "numpy", "driftwise", "other"}
        if profile["samples"]:  # a --quick level lasts well under a second: it may catch none
            assert abs(sum(profile["groups"].values()) - 1.0) < 1e-6
            assert profile["top_self"] and all(0 < share <= 1 for _, share in profile["top_self"])
    if not any(p["error"] for p in row["profile"]):
        assert sum(p["samples"] for p in row["profile"]) > 0
    fresh = row["freshness"]
    assert fresh["samples"] >= 3
    assert 0 < fresh["p50_ms"] <= fresh["p99_ms"] <= fresh["max_ms"]
    assert fresh["mean_recommend_calls"] >= 1
    # a periodic refit ran under load, and the calls during it were told apart from the others
    assert row["refit_s"] > 0 and row["during_refit"] is not None
    assert row["outside_refit"]["requests"] > 0 and row["outside_refit"]["p99_ms"] > 0
    assert "during a refit" in result.stdout
