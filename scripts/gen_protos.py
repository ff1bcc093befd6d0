"""Regenerate the Python code for protos/ into services/driftwise/v1 (generated code only).

Usage: python scripts/gen_protos.py [--out DIR]   (DIR defaults to services/; the stale-code test
passes a temporary directory and compares). Uses grpcio-tools' bundled protoc and mypy-protobuf
for typed stubs, so the output depends only on the pinned dev dependencies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
INIT_TEXT = '"""Generated from protos/driftwise/v1 by scripts/gen_protos.py. Do not edit."""\n'


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "driftwise/v1").glob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent  # mypy-protobuf's plugins, also when .venv is not activated
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / "driftwise/v1/__init__.py").write_text(INIT_TEXT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "services")
    ns = parser.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "driftwise/v1").mkdir(parents=True, exist_ok=True)
    generate(ns.out)
    print(f"generated into {ns.out / 'driftwise/v1'}", file=sys.stderr)


if __name__ == "__main__":
    main()
