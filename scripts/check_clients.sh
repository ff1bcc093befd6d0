#!/usr/bin/env bash
# The clients (CI; idempotent; ~5 min fresh, most of it installing Go/Java from Debian and npm ci):
#  1. the protos: buf lint, buf format, and buf breaking against main (wire-incompatible changes fail);
#  2. the Python client: stubs fresh, lint, mypy, its tests (they start their own servers);
#  3. one all-in-one server (`driftwise serve`: local Triton + Milvus Lite, a temp data dir, a free
#     port), then the Go, TypeScript and Java stubs checked fresh, the examples built and run
#     against it, their output checked (scripts/clients/<language>.sh ADDR).
# Needs scripts/setup.sh to have run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.venv/bin/buf}

echo "==> buf lint, format, breaking"
"$BUF" lint
"$BUF" format -d --exit-code
# against the main branch (a local branch in a clone; a remote-tracking one otherwise)
if git rev-parse --verify -q refs/heads/main >/dev/null; then
  against=".git#branch=main"
else
  against=".git#ref=refs/remotes/origin/main"
fi
"$BUF" breaking --against "$against"

echo "==> Python client"
scripts/clients/python.sh

data=$(mktemp -d)
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DRIFTWISE_DATA_DIR="$data" .venv/bin/driftwise serve --port "$port" >"$data/serve.log" 2>&1 &
server=$!
stop_server() {
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap stop_server EXIT
echo "==> all-in-one server on 127.0.0.1:$port (log $data/serve.log)"
for _ in $(seq 1 180); do
  grep -q "driftwise serving on" "$data/serve.log" && break
  kill -0 "$server" 2>/dev/null || { cat "$data/serve.log"; echo "check_clients: the server died" >&2; exit 1; }
  sleep 1
done
grep -q "driftwise serving on" "$data/serve.log" || { cat "$data/serve.log"; echo "check_clients: server not ready" >&2; exit 1; }

for language in go typescript java; do
  echo "==> $language client against the live server"
  "scripts/clients/$language.sh" "127.0.0.1:$port"
done
echo "==> clients OK"
