#!/usr/bin/env bash
# The clients (CI; idempotent; ~5 min fresh, most of it installing Go/Java from Debian and npm ci):
#  1. the protos: buf lint, buf format, and buf breaking against main (wire-incompatible changes fail);
#  2. the Python client: stubs fresh, lint, mypy, its tests (they start their own servers);
#  3. one all-in-one server (`driftwise serve`: local Triton + Milvus Lite, a temp data dir, a free
#     port), then the Go, TypeScript and Java stubs checked fresh, the examples built and run
#     against it, their output checked (scripts/clients/<language>.sh ADDR);
#  4. a second server with mutual TLS and token auth (fresh CA, server and client certificates from
#     scripts/dev_certs.sh, a tokens file with one tenant holding every scope; it shares the first
#     server's Triton), the Go, TypeScript and Java quickstarts run against it again with the CA, the
#     client certificate and the token, and three refusals checked: no client certificate, no token,
#     a token over plaintext to a non-loopback address.
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
secure_server=""
stop_server() {
  local pid
  for pid in $secure_server $server; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$data"
}
trap stop_server EXIT
echo "==> all-in-one server on 127.0.0.1:$port (log $data/serve.log)"
# wait_ready PID LOG: until the server prints that it serves (or dies, or 180 s pass)
wait_ready() {
  for _ in $(seq 1 180); do
    grep -q "driftwise serving on" "$2" && return 0
    kill -0 "$1" 2>/dev/null || { cat "$2"; echo "check_clients: the server died" >&2; exit 1; }
    sleep 1
  done
  cat "$2"
  echo "check_clients: server not ready" >&2
  exit 1
}
wait_ready "$server" "$data/serve.log"

for language in go typescript java; do
  echo "==> $language client against the live server"
  "scripts/clients/$language.sh" "127.0.0.1:$port"
done

# --- 4. mutual TLS + tokens ------------------------------------------------------------------------
secure_started=$SECONDS
secure="$data/secure"
pki="$secure/pki"
mkdir -p "$secure"
scripts/dev_certs.sh "$pki"
.venv/bin/driftwise token --tenant check-clients \
  --scopes events:write,items:write,profiles:read,users:delete,recommend \
  >"$secure/tokens.toml" 2>"$secure/token.txt"
token=$(sed -n 's/^# token.*: \([^ ]*\)$/\1/p' "$secure/token.txt")
[ -n "$token" ] || { cat "$secure/token.txt"; echo "check_clients: no token from driftwise token" >&2; exit 1; }
# the first server's local Triton (its child; the port is on its command line), so the second
# server starts in seconds; without it, the second server starts its own
triton_port=""
for child in $(ps -o pid= --ppid "$server" || true); do
  triton_port=$(tr '\0' '\n' 2>/dev/null <"/proc/$child/cmdline" | sed -n 's/^--grpc-port=\([0-9]*\)$/\1/p' | head -n 1 || true)
  [ -n "$triton_port" ] && break
done
secure_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DRIFTWISE_DATA_DIR="$secure/data" \
  DRIFTWISE_TRITON__URL="${triton_port:+127.0.0.1:$triton_port}" \
  DRIFTWISE_TLS__CERT_FILE="$pki/server.crt" DRIFTWISE_TLS__KEY_FILE="$pki/server.key" \
  DRIFTWISE_TLS__CLIENT_CA_FILE="$pki/ca.crt" \
  DRIFTWISE_AUTH__ENABLED=true DRIFTWISE_AUTH__TOKENS_FILE="$secure/tokens.toml" \
  .venv/bin/driftwise serve --port "$secure_port" >"$secure/serve.log" 2>&1 &
secure_server=$!
echo "==> mutual TLS + token server on 127.0.0.1:$secure_port (Triton ${triton_port:-its own}; log $secure/serve.log)"
wait_ready "$secure_server" "$secure/serve.log"

export DRIFTWISE_TLS_CA="$pki/ca.crt" DRIFTWISE_TLS_CERT="$pki/client.crt" DRIFTWISE_TLS_KEY="$pki/client.key"
export DRIFTWISE_TOKEN="$token"
# localhost: the name the server certificate carries, also the host name a real deployment dials
for language in go typescript; do
  echo "==> $language client, mutual TLS + token"
  "scripts/clients/$language.sh" "localhost:$secure_port"
done
echo "==> java client, mutual TLS + token"
scripts/clients/java.sh --run-only "localhost:$secure_port"

# refused_ts WHAT PATTERN [VAR=VALUE...]: the TypeScript quickstart (built above) must fail, saying PATTERN
refused_ts() {
  local what=$1 pattern=$2 out rc=0
  shift 2
  out=$(cd clients/typescript && env "$@" DRIFTWISE_TIMEOUT_MS=5000 node dist/examples/quickstart.js 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] || ! grep -Eq "$pattern" <<<"$out"; then
    echo "$out"
    echo "check_clients: $what: expected a failure matching /$pattern/ (exit $rc)" >&2
    exit 1
  fi
  echo "refused as expected ($what): $(grep -Em1 "$pattern" <<<"$out")"
}
echo "==> refusals"
refused_ts "no client certificate" "UNAVAILABLE|handshake|certificate" \
  -u DRIFTWISE_TLS_CERT -u DRIFTWISE_TLS_KEY DRIFTWISE_ADDR="localhost:$secure_port"
refused_ts "no token" "UNAUTHENTICATED" -u DRIFTWISE_TOKEN DRIFTWISE_ADDR="localhost:$secure_port"
refused_ts "token over plaintext to a non-loopback address" "refusing to send a token in plaintext" \
  -u DRIFTWISE_TLS_CA -u DRIFTWISE_TLS_CERT -u DRIFTWISE_TLS_KEY DRIFTWISE_ADDR="192.0.2.1:$secure_port"
echo "==> clients OK (${SECONDS} s in all, $((SECONDS - secure_started)) s of them for mutual TLS + tokens)"
