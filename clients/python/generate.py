"""Regenerate the client's own stubs for ../../protos into src/driftwise_client/v1 (generated code only).

Usage: python clients/python/generate.py [--out DIR] [--check]

protoc writes `driftwise/v1/*_pb2.py` with absolute imports (`from driftwise.v1 import common_pb2`);
those would import the *server* package. The client must stand alone, so the imports (and the
module names the message classes are registered under) are rewritten to `driftwise_client.v1`. The
proto package stays `driftwise.v1`: the wire format and the descriptor file names are unchanged.

Uses grpcio-tools' bundled protoc and mypy-protobuf (typed `.pyi` for messages and stubs), so the
output depends only on the pinned dev tools and is byte-for-byte reproducible. `--check`
regenerates into a temporary directory and fails (exit 1, with a diff) if the committed files differ.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "protos"
PACKAGE_DIR = HERE / "src"
GENERATED = Path("driftwise_client") / "v1"
INIT_TEXT = '"""Generated from protos/driftwise/v1 by clients/python/generate.py. Do not edit."""\n'

# (pattern, replacement): only Python import paths and module names; never the proto package name
# (`.driftwise.v1.Item` in descriptors and docstrings is the wire-level name and must stay).
REWRITES = [
    (re.compile(r"^from driftwise\.v1 import ", re.MULTILINE), "from driftwise_client.v1 import "),
    (
        re.compile(r"BuildTopDescriptorsAndMessages\(DESCRIPTOR, 'driftwise\.v1\."),
        "BuildTopDescriptorsAndMessages(DESCRIPTOR, 'driftwise_client.v1.",
    ),
    (re.compile(r"generated code in driftwise/v1/"), "generated code in driftwise_client/v1/"),
]
LEFTOVER = re.compile(r"^\s*(from driftwise\.v1\b|import driftwise\.v1\b)", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    """Generate into out/driftwise_client/v1 and return the written files (relative to out)."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "driftwise/v1").glob("*.proto"))
    if not protos:
        raise SystemExit(f"no protos under {PROTO_ROOT}")
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent  # mypy-protobuf's plugins, also when the venv is not activated
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            *protos,
        ]
        with tempfile.TemporaryFile() as log:
            # mypy-protobuf's plugins chat on stderr ("Writing mypy to ..."): show it only on failure
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
            try:
                status = protoc.main(args)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            if status != 0:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace"))
                raise SystemExit("protoc failed")
        target = out / GENERATED
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((raw / "driftwise" / "v1").iterdir()):
            if src.suffix not in {".py", ".pyi"}:
                continue
            text = src.read_text()
            for pattern, replacement in REWRITES:
                text = pattern.sub(replacement, text)
            if LEFTOVER.search(text):
                raise SystemExit(f"{src.name}: an import of driftwise.v1 was not rewritten")
            (target / src.name).write_text(text)
            written.append(GENERATED / src.name)
    (out / GENERATED / "__init__.py").write_text(INIT_TEXT)
    written.append(GENERATED / "__init__.py")
    return sorted(written)


def check() -> int:
    """0 if the committed stubs equal freshly generated ones; else print a diff and return 1."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        fresh = {p.name for p in generate(fresh_root)}
        committed = {p.name for p in (PACKAGE_DIR / GENERATED).iterdir() if p.suffix in {".py", ".pyi"}}
        stale = False
        for name in sorted(fresh | committed):
            new_path, old_path = fresh_root / GENERATED / name, PACKAGE_DIR / GENERATED / name
            new = new_path.read_text().splitlines(keepends=True) if new_path.exists() else []
            old = old_path.read_text().splitlines(keepends=True) if old_path.exists() else []
            if new != old:
                stale = True
                sys.stdout.writelines(
                    difflib.unified_diff(old, new, f"committed/{name}", f"generated/{name}", n=1)
                )
    if stale:
        print("stale generated code: run `python clients/python/generate.py`", file=sys.stderr)
        return 1
    print(f"generated code is fresh ({len(fresh)} files)", file=sys.stderr)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=PACKAGE_DIR, help="root to write driftwise_client/v1 under"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    ns = parser.parse_args()
    if ns.check:
        raise SystemExit(check())
    files = generate(ns.out)
    print(f"generated {len(files)} files into {ns.out / GENERATED}", file=sys.stderr)


if __name__ == "__main__":
    main()
