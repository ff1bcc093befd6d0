"""`driftwise eval` end to end on a tiny MovieLens-format dataset: Driftwise measured by what
Recommend serves (an app in process, a local Triton, Milvus Lite), beside the baselines."""

import csv
import json
from pathlib import Path

import pytest

from driftwise.cli import main

pytestmark = pytest.mark.integration

GENRES = ("Western", "Horror", "Musical", "Documentary")


def write_dataset(folder: Path) -> None:
    """12 users; each rates the movies of one genre, in movie order, one per day."""
    folder.mkdir()
    with open(folder / "movies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["movieId", "title", "genres"])
        for m in range(40):
            w.writerow([m + 1, f"{GENRES[m % 4]} story number {m} (1990)", GENRES[m % 4]])
    with open(folder / "tags.csv", "w", newline="") as f:
        csv.writer(f).writerow(["userId", "movieId", "tag", "timestamp"])
    with open(folder / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        for u in range(12):
            genre = u % 4
            movies = [m for m in range(40) if m % 4 == genre][u // 4 : u // 4 + 8]
            for day, m in enumerate(movies):
                w.writerow([u + 1, m + 1, 4.0, 1_000_000 + 86_400 * day + u])


def test_eval_serves_every_user_and_writes_a_table_and_a_plot(tmp_path: Path) -> None:
    dataset, out = tmp_path / "ml", tmp_path / "out"
    write_dataset(dataset)
    main(["--data-dir", str(tmp_path / "state"), "eval", "--dataset", str(dataset), "--out", str(out)])
    result = json.loads((out / "results.json").read_text())
    served = result["test"]["driftwise (served)"]
    assert {"popularity", "item_knn", "driftwise, as configured (no self-tuning)"} <= set(result["test"])
    assert result["users"] == 12 and result["items"] == 40
    assert (out / "metrics.png").stat().st_size > 10_000
    assert "| driftwise (served) |" in (out / "results.md").read_text()
    # genre-pure users: Driftwise finds the next movie of the genre far better than popularity
    assert served["hr@10"] > result["test"]["popularity"]["hr@10"]
    # 12 users are too few to tune on: the configured settings are served, and measured the same
    assert result["self_tuning"]["status"] == "too_few_users"
    assert result["test"]["driftwise, as configured (no self-tuning)"]["hr@10"] == served["hr@10"]
