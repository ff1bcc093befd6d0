"""What a serving process costs before it does any work: import time, memory, time to SERVING,
and whether torch is loaded, for this tree and a baseline commit, side by side in one run.

    .venv/bin/python bench/footprint.py --baseline REV [--rounds 3]

For each tree (this one, and REV checked out in a temporary git worktree), alternately, `--rounds`
times:
1. import: a fresh interpreter imports `driftwise.server` (the code every serving role runs) and
   reports the seconds it took, its peak RSS and whether `torch` is in `sys.modules`;
2. serve: `python -m driftwise.cli serve` on an empty data dir (Milvus Lite) against one shared
   local Triton (so Triton's own start is not counted), timed to gRPC health SERVING; then the
   serving process's RSS (VmRSS, /proc) and whether it mapped libtorch.
Both trees run on this .venv, each with PYTHONPATH=<tree>/services. Medians are printed with the
baseline / this ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import ServerProcess  # bench/serving.py: `driftwise serve` as a subprocess

from driftwise.inference.triton_server import LocalTritonServer
from driftwise.settings import REPO_ROOT

IMPORT_PROBE = """
import json, resource, sys, time
started = time.perf_counter()
import driftwise.server
print(json.dumps({"seconds": time.perf_counter() - started,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch": "torch" in sys.modules, "file": driftwise.server.__file__}))
"""


@dataclass
class Samples:
    import_s: list[float] = field(default_factory=list)
    import_rss_mb: list[float] = field(default_factory=list)
    serving_s: list[float] = field(default_factory=list)
    serving_rss_mb: list[float] = field(default_factory=list)
    torch_imported: bool = False
    torch_mapped: bool = False


def tree_env(tree: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(tree / "services")}


def measure_import(tree: Path, samples: Samples) -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        env={**os.environ, **tree_env(tree)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["file"].startswith(str(tree)), f"imported {row['file']}, not from {tree}"
    samples.import_s.append(row["seconds"])
    samples.import_rss_mb.append(row["rss_mb"])
    samples.torch_imported = row["torch"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def measure_serve(tree: Path, triton_url: str, samples: Samples) -> None:
    with tempfile.TemporaryDirectory(prefix="driftwise-footprint-") as data_dir:
        env = {**tree_env(tree), "DRIFTWISE_DATA_DIR": data_dir, "DRIFTWISE_TRITON__URL": triton_url}
        server = ServerProcess(Path(data_dir), env)
        server_cmd = [sys.executable, "-m", "driftwise.cli", "serve"]
        try:
            samples.serving_s.append(await server.start(command=server_cmd))
            assert server.proc is not None
            samples.serving_rss_mb.append(rss_mb(server.proc.pid))
            samples.torch_mapped = "libtorch" in Path(f"/proc/{server.proc.pid}/maps").read_text()
        finally:
            await server.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="git revision to compare with (e.g. a commit id)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftwise-footprint-tree-") as tmp:
        baseline_tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(baseline_tree), args.baseline],
            check=True,
            capture_output=True,
        )
        trees = {f"baseline {args.baseline}": baseline_tree, "this tree": REPO_ROOT}
        results = {name: Samples() for name in trees}
        triton = LocalTritonServer(
            REPO_ROOT / "model_repository", models=["text_encoder"], log_path=Path(tmp) / "triton.log"
        )
        triton.start()
        try:
            for round_ in range(args.rounds):
                for name, tree in trees.items():
                    measure_import(tree, results[name])
                    await measure_serve(tree, triton.grpc_url, results[name])
                    s = results[name]
                    print(
                        f"round {round_ + 1} {name}: import {s.import_s[-1]:.2f} s,"
                        f" {s.import_rss_mb[-1]:.0f} MB;"
                        f" SERVING in {s.serving_s[-1]:.2f} s, RSS {s.serving_rss_mb[-1]:.0f} MB",
                        flush=True,
                    )
        finally:
            triton.stop()
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(baseline_tree)],
                check=False,
                capture_output=True,
            )

    base, this = results[f"baseline {args.baseline}"], results["this tree"]
    print(f"\n# Serving-process footprint, {args.rounds} rounds, medians")
    print("| | baseline | this tree | baseline / this |")
    print("|---|---:|---:|---:|")
    for label, attr, unit in (
        ("import driftwise.server", "import_s", "s"),
        ("peak RSS after that import", "import_rss_mb", "MB"),
        ("`driftwise serve` to health SERVING (Triton already up)", "serving_s", "s"),
        ("RSS of the serving process at SERVING", "serving_rss_mb", "MB"),
    ):
        b, t = median(getattr(base, attr)), median(getattr(this, attr))
        print(f"| {label} | {b:.2f} {unit} | {t:.2f} {unit} | {b / t:.2f} |")
    flags = [f"{s.torch_imported} / {s.torch_mapped}" for s in (base, this)]
    print(f"| torch imported / mapped | {flags[0]} | {flags[1]} | |")


if __name__ == "__main__":
    asyncio.run(main())
