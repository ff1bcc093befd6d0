#!/usr/bin/env bash
# Regenerate every committed stub from protos/ in one command, after a change to protos/:
#
#   scripts/gen_protos.sh
#
# It installs the plugins if missing (Debian's protoc-gen-go/-go-grpc via scripts/clients/go.sh
# --install, ts-proto via scripts/clients/typescript.sh --install; grpcio-tools and mypy-protobuf come
# with scripts/setup.sh's .venv), runs buf lint, then ONE `buf generate` with the root buf.gen.yaml:
# - Python: clients/python/src/driftwise_client/v1 (one copy, which the server imports too; the plugin
#   is clients/python/generate.py);
# - Go: clients/go/driftwise/v1;
# - TypeScript: clients/typescript/src/gen.
# Java is not committed: scripts/clients/java.sh and the Maven build generate it at build time
# (clients/java/buf.gen.yaml). CI fails when anything committed is stale: scripts/check_generated.py,
# run by tests/unit/test_generated_code.py for Python and by scripts/check_clients.sh for every client.
# Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x .venv/bin/python ]] || { echo "gen_protos: no .venv; run scripts/setup.sh first" >&2; exit 1; }

scripts/clients/go.sh --install
scripts/clients/typescript.sh --install
.venv/bin/buf lint
.venv/bin/buf generate
echo "gen_protos: every stub regenerated (buf.gen.yaml); review with git status and commit them"
