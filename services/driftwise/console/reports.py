"""The latest report of `driftwise eval`, for the Evaluation page.

`driftwise eval --out DIR` writes DIR/results.json, results.md and metrics.png. The console is
given a path (console.eval_report, `--eval-report`): a results.json, a folder holding one, or a
folder of such folders (one per run); the newest results.json found is the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = "results.json"
PLOT = "metrics.png"


@dataclass(frozen=True)
class Report:
    path: Path  # the results.json

    @property
    def plot(self) -> Path | None:
        plot = self.path.parent / PLOT
        return plot if plot.is_file() else None

    def to_json(self) -> dict[str, Any]:
        """The results as written, with where and when they were written."""
        results = json.loads(self.path.read_text())
        if not isinstance(results, dict):
            raise ValueError(f"{self.path}: not a results object")
        written = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        return {
            "path": str(self.path),
            "written": written.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "has_plot": self.plot is not None,
            "results": results,
        }


def latest_report(where: Path) -> Report | None:
    """The newest results.json at `where` (a file, a folder, or a folder of folders); None if
    there is none."""
    if where.is_file():
        return Report(where)
    if not where.is_dir():
        return None
    found = [p for p in (where / RESULTS, *where.glob(f"*/{RESULTS}")) if p.is_file()]
    if not found:
        return None
    return Report(max(found, key=lambda p: p.stat().st_mtime))
