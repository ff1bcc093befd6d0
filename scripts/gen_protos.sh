#!/usr/bin/env bash
# Regenerate every committed stub from protos/ in one command, after a change to protos/:
#
#   scripts/gen_protos.sh
#
# - Python (clients/python/src/driftwise_client/v1: one copy, which the server imports too), with
#   grpcio-tools and mypy-protobuf from .venv;
# - Go (clients/go/driftwise/v1) and TypeScript (clients/typescript/src/gen) with buf and local
#   plugins (each script installs its toolchain if missing).
# Java is not committed: scripts/clients/java.sh and the Maven build generate it at build time.
# CI fails when anything committed is stale (tests/unit/test_generated_code.py for Python,
# scripts/check_clients.sh for every client). Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x .venv/bin/python ]] || { echo "gen_protos: no .venv; run scripts/setup.sh first" >&2; exit 1; }

.venv/bin/buf lint
.venv/bin/python clients/python/generate.py
scripts/clients/go.sh --regenerate
scripts/clients/typescript.sh --regenerate
echo "gen_protos: every stub regenerated; review with git status and commit them"
