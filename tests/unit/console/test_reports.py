"""The latest `driftwise eval` report: a file, a folder, a folder of runs; none."""

import json
import os
from pathlib import Path

from driftwise.console.reports import latest_report


def write_run(folder: Path, users: int, mtime: float, plot: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    results = folder / "results.json"
    results.write_text(json.dumps({"users": users, "test": {}}))
    os.utime(results, (mtime, mtime))
    if plot:
        (folder / "metrics.png").write_bytes(b"\x89PNG")
    return results


def test_no_report(tmp_path: Path) -> None:
    assert latest_report(tmp_path / "missing") is None
    assert latest_report(tmp_path) is None


def test_a_folder_or_a_file(tmp_path: Path) -> None:
    results = write_run(tmp_path, 610, 1_000_000, plot=True)
    for where in (tmp_path, results):
        report = latest_report(where)
        assert report is not None and report.path == results and report.plot == tmp_path / "metrics.png"
        shown = report.to_json()
        assert shown["results"]["users"] == 610 and shown["has_plot"] is True
        assert shown["written"] == "1970-01-12T13:46:40Z"


def test_the_newest_run_of_a_folder_of_runs(tmp_path: Path) -> None:
    write_run(tmp_path / "monday", 1, 1_000_000)
    newest = write_run(tmp_path / "tuesday", 2, 2_000_000)
    write_run(tmp_path / "sunday", 3, 500_000)
    report = latest_report(tmp_path)
    assert report is not None and report.path == newest and report.plot is None
