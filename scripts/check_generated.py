"""Fail when committed generated code is stale: regenerate it aside with the root buf.gen.yaml and compare.

Usage: scripts/check_generated.py [OUT ...]

OUT is a plugin's `out` in buf.gen.yaml (clients/python/src/driftwise_client/v1, clients/go/driftwise/v1,
clients/typescript/src/gen); with none, every one. Only the plugins writing to the named trees run (the
same entries of the same template, so a check needs only its own language's toolchain), with
`buf generate -o TMP`; each tree must equal the committed one, file for file, byte for byte.
Exit status: 0 fresh; 1 stale (a diff is printed); 2 when the check itself fails.
buf is $BUF, else .venv/bin/buf, else the one next to this interpreter or on PATH.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "buf.gen.yaml"
MAX_DIFF_LINES = 200


def find_buf() -> str:
    candidates = [os.environ.get("BUF"), ROOT / ".venv" / "bin" / "buf", Path(sys.executable).parent / "buf"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("buf")
    if not found:
        print("check_generated: buf not found (scripts/setup.sh installs it into .venv)", file=sys.stderr)
        raise SystemExit(2)
    return found


def subset(template: dict[str, object], outs: list[str]) -> dict[str, object]:
    """The template with only the plugins whose `out` is one of outs (all when outs is empty)."""
    plugins = template["plugins"]
    assert isinstance(plugins, list)
    known = sorted({p["out"] for p in plugins})
    unknown = [o for o in outs if o not in known]
    if unknown:
        print(f"check_generated: {unknown}: no plugin's out in buf.gen.yaml ({known})", file=sys.stderr)
        raise SystemExit(2)
    return {**template, "plugins": [p for p in plugins if not outs or p["out"] in outs]}


def compare(fresh: Path, committed: Path) -> list[str]:
    """A unified diff (committed -> fresh) of the two trees; empty when they are equal."""
    names = sorted(
        {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
        | {p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()}
    )
    diff: list[str] = []
    for name in names:
        new_path, old_path = fresh / name, committed / name
        new = new_path.read_bytes() if new_path.is_file() else None
        old = old_path.read_bytes() if old_path.is_file() else None
        if new == old:
            continue
        if new is None or old is None:
            where = "in the tree, not generated" if new is None else "generated, not in the tree"
            diff.append(f"{name}: {where}\n")
            continue
        diff.extend(
            difflib.unified_diff(
                old.decode(errors="replace").splitlines(keepends=True),
                new.decode(errors="replace").splitlines(keepends=True),
                f"committed/{name}",
                f"generated/{name}",
                n=1,
            )
        )
    return diff


def main(outs: list[str]) -> int:
    outs = [o.rstrip("/") for o in outs]
    template = subset(yaml.safe_load(TEMPLATE.read_text()), outs)
    checked = sorted({p["out"] for p in template["plugins"]})  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [find_buf(), "generate", "--template", json.dumps(template), "-o", tmp],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            print(f"check_generated: buf generate failed for {checked}", file=sys.stderr)
            return 2
        stale = []
        for out in checked:
            diff = compare(Path(tmp) / out, ROOT / out)
            if diff:
                stale.append(out)
                sys.stdout.writelines(diff[:MAX_DIFF_LINES])
                if len(diff) > MAX_DIFF_LINES:
                    print(f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)")
    if stale:
        print(f"check_generated: stale {stale}: run scripts/gen_protos.sh and commit it", file=sys.stderr)
        return 1
    print(f"check_generated: fresh {checked}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if any(a.startswith("-") for a in sys.argv[1:]):
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1:]))
