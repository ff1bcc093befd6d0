#!/usr/bin/env bash
# TypeScript client: install its pinned npm packages, check the generated stubs are fresh, type-check
# and compile src/ + examples/ with tsc and, given a server address, run the quickstart against that
# server and check what it prints.
#
#   scripts/clients/typescript.sh                # npm ci (if needed) + freshness check + tsc build
#   scripts/clients/typescript.sh ADDR           # ... and run examples/quickstart against ADDR (host:port)
#   scripts/clients/typescript.sh --regenerate   # rewrite clients/typescript/src/gen from protos/
#   scripts/clients/typescript.sh --install      # only npm ci, if needed (scripts/gen_protos.sh uses it)
#
# Needs node >= 20 and npm (the npm registry, or a warm npm cache, for the first `npm ci`) and buf
# (.venv/bin/buf from scripts/setup.sh, or on PATH). The code generator is ts-proto's
# protoc-gen-ts_proto from clients/typescript/node_modules, run by buf as a local plugin, so the
# output depends only on package-lock.json. node 20 cannot run .ts files, so tsc compiles to
# clients/typescript/dist/ and node runs the JavaScript. Idempotent; exits non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKG="$ROOT/clients/typescript"
TEMPLATE=clients/typescript/buf.gen.yaml
GENERATED=clients/typescript/src/gen
STAMP="$PKG/node_modules/.driftwise-lock.sha256"

log() { echo "typescript.sh: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

check_node() {
  command -v node >/dev/null || die "node not found (node >= 20 is needed)"
  command -v npm >/dev/null || die "npm not found"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "node $(node --version) is too old: node >= 20 is needed"
}

# npm ci when node_modules is missing or was installed from another package-lock.json.
install_packages() {
  local want
  want="$(sha256sum "$PKG/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$PKG/node_modules/.bin/tsc" ]; then
    return 0
  fi
  log "npm ci in clients/typescript"
  (cd "$PKG" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci"
  echo "$want" >"$STAMP"
}

find_buf() {
  if [ -n "${BUF:-}" ]; then echo "$BUF"; return; fi
  if [ -x "$ROOT/.venv/bin/buf" ]; then echo "$ROOT/.venv/bin/buf"; return; fi
  command -v buf >/dev/null || die "buf not found (pip install buf-bin, or scripts/setup.sh)"
  command -v buf
}

# buf generate with the local ts-proto plugin; $1 = base output directory.
generate() {
  (cd "$ROOT" && "$BUF" generate --template "$TEMPLATE" -o "$1") || die "buf generate"
}

# Runs the compiled quickstart against $1 and checks the lines it prints.
run_quickstart() {
  local addr="$1" out="$TMP/quickstart.out"
  log "running the quickstart against $addr"
  if ! (cd "$PKG" && DRIFTWISE_ADDR="$addr" node dist/examples/quickstart.js) >"$out" 2>&1; then
    cat "$out" >&2
    die "quickstart exited non-zero"
  fi
  cat "$out"
  grep -qx 'upserted 5' "$out" || die "quickstart: no 'upserted 5' line"
  grep -qx 'ingested 2 events (profile version [0-9]*)' "$out" || die "quickstart: no 'ingested 2 events' line"
  grep -Eq '^recommended [1-9][0-9]* items ' "$out" || die "quickstart: no 'recommended N items' line (N >= 1)"
  grep -Eq '^  1\. \S+  score -?[0-9.]+  .*  -- ' "$out" || die "quickstart: no recommended item with a score and an explanation"
  grep -Eq '^feedback answered: [1-9][0-9]* items \(liked \S+, profile version 3\)$' "$out" \
    || die "quickstart: no 'feedback answered: K items' line (K >= 1, profile version 3)"
  [ "$(tail -n 1 "$out")" = "OK" ] || die "quickstart: last line is not OK"
}

main() {
  check_node
  install_packages
  if [ "${1:-}" = "--install" ]; then
    log "packages installed (ts-proto $(cd "$PKG" && node -p 'require("ts-proto/package.json").version'))"
    return 0
  fi
  BUF="$(find_buf)"
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT

  if [ "${1:-}" = "--regenerate" ]; then
    generate "$ROOT"
    log "regenerated $GENERATED"
    echo "typescript client: regenerated OK"
    return 0
  fi

  generate "$TMP"
  if ! diff -r "$TMP/$GENERATED" "$ROOT/$GENERATED" >"$TMP/gen.diff"; then
    head -n 40 "$TMP/gen.diff" >&2
    die "$GENERATED is stale: run scripts/clients/typescript.sh --regenerate and commit it"
  fi
  log "generated code is fresh"

  rm -rf "$PKG/dist"
  (cd "$PKG" && node_modules/.bin/tsc -p tsconfig.json) || die "tsc"
  log "tsc $("$PKG/node_modules/.bin/tsc" --version | sed 's/^Version //') built src/ and examples/ into clients/typescript/dist"

  if [ -n "${1:-}" ]; then
    run_quickstart "$1"
  fi
  echo "typescript client: OK"
}

main "$@"
