#!/usr/bin/env bash
# Build and test the Python client, clients/python (CI; idempotent; ~1-2 min, most of it starting
# the live server's Triton):
#  1. install it editable into the repo's .venv (its runtime deps are already there; pip fetches
#     hatchling for the build);
#  2. check the committed stubs in src/driftwise_client/v1 equal freshly generated ones (the root
#     buf.gen.yaml's Python plugin, clients/python/generate.py, run by scripts/check_generated.py);
#  3. ruff (check + format) and mypy --strict on the hand-written code;
#  4. its tests, against a live all-in-one server (`driftwise serve`: local Triton + Milvus Lite in
#     a temp dir), scripted gRPC servers (retries, deadlines, tokens) and a TLS server (openssl).
#     DRIFTWISE_CLIENT_REQUIRE_LIVE=1 makes missing live prerequisites a failure, not a skip.
# Needs scripts/setup.sh to have run (the server and its dev tools in .venv). Any error fails it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
CLIENT=clients/python

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'clients/python: FAILED: %s\n' "$*" >&2; exit 1; }
trap 'die "step failed (line $LINENO)"' ERR

[ -x "$PY" ] || die "$PY not found: run scripts/setup.sh first"

log "install driftwise-client (editable)"
"$PY" -m pip install --quiet --disable-pip-version-check -e "$CLIENT"
"$PY" -c 'import driftwise_client as c; print("driftwise-client", c.__version__, "from", c.__file__)'

log "generated stubs are fresh"
"$PY" scripts/check_generated.py "$CLIENT/src/driftwise_client/v1"

log "ruff"
(cd "$CLIENT" && "$PY" -m ruff check . && "$PY" -m ruff format --check .)

log "mypy --strict"
(cd "$CLIENT" && "$PY" -m mypy)

log "tests"
DRIFTWISE_CLIENT_REQUIRE_LIVE=1 "$PY" -m pytest "$CLIENT/tests" -q -p no:cacheprovider "$@"

trap - ERR
echo "OK clients/python: installed, stubs fresh, ruff + mypy clean, tests passed"
