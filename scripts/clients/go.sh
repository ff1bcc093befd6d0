#!/usr/bin/env bash
# Go client: install the toolchain, check the generated stubs are fresh, build the example and,
# given a server address, run it against that server and check what it prints.
#
#   scripts/clients/go.sh            # install (if missing) + freshness check + build
#   scripts/clients/go.sh ADDR       # ... and run examples/quickstart against ADDR (host:port)
#   scripts/clients/go.sh --regenerate   # rewrite clients/go/driftwise/v1 from protos/
#   scripts/clients/go.sh --install  # only install the toolchain (scripts/gen_protos.sh uses it)
#
# Everything is offline: Debian's Go 1.19 builds in GOPATH mode (GO111MODULE=off) against the
# libraries apt installs under /usr/share/gocode; a temporary GOPATH links this checkout's
# clients/go in as github.com/driftwise/driftwise/clients/go. Idempotent; exits non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODULE=github.com/driftwise/driftwise/clients/go
TEMPLATE=clients/go/buf.gen.yaml
GENERATED=clients/go/driftwise/v1
# golang-github-golang-protobuf-1-5-dev is required: without it grpc-go links the old
# github.com/golang/protobuf and the client panics at run time.
PACKAGES=(protobuf-compiler protobuf-compiler-grpc golang-go protoc-gen-go protoc-gen-go-grpc
  golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  golang-google-genproto-dev)

log() { echo "go.sh: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

install_toolchain() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_buf() {
  if [ -x "$ROOT/.venv/bin/buf" ]; then echo "$ROOT/.venv/bin/buf"; return; fi
  command -v buf >/dev/null || die "buf not found (pip install buf-bin, or scripts/setup.sh)"
  command -v buf
}

# buf generate with Debian's local plugins (first on PATH, so the output does not depend on
# whatever protoc-gen-go a developer has in ~/go/bin); $1 = base output directory.
generate() {
  (cd "$ROOT" && PATH="/usr/bin:$PATH" "$BUF" generate --template "$TEMPLATE" -o "$1")
}

main() {
  install_toolchain
  if [ "${1:-}" = "--install" ]; then
    log "toolchain installed ($(/usr/bin/protoc-gen-go --version))"
    return 0
  fi
  BUF="$(find_buf)"
  export GO111MODULE=off GOFLAGS= CGO_ENABLED=0
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT

  if [ "${1:-}" = "--regenerate" ]; then
    rm -f "$ROOT/$GENERATED"/*.pb.go
    generate "$ROOT"
    log "regenerated $GENERATED"
    echo "go client: regenerated OK"
    return 0
  fi

  # 1. The committed stubs equal a fresh generation.
  generate "$TMP/gen"
  diff -r "$TMP/gen/$GENERATED" "$ROOT/$GENERATED" >&2 ||
    die "$GENERATED is stale: run scripts/clients/go.sh --regenerate and commit the result"
  log "generated code is fresh ($(ls "$TMP/gen/$GENERATED" | wc -l) files)"

  # 2. gofmt and vet the hand-written code, build the stubs and the example in GOPATH mode.
  local unformatted
  unformatted="$(gofmt -l "$ROOT/clients/go/examples")"
  [ -z "$unformatted" ] || die "not gofmt-ed: $unformatted"
  mkdir -p "$TMP/gopath/src/$(dirname "$MODULE")"
  ln -s "$ROOT/clients/go" "$TMP/gopath/src/$MODULE"
  export GOPATH="$TMP/gopath:/usr/share/gocode"
  (cd "$TMP/gopath/src/$MODULE" &&
    go vet "$MODULE/driftwise/v1" "$MODULE/examples/quickstart" &&
    go build -o "$TMP/quickstart" "$MODULE/examples/quickstart") || die "go build failed"
  log "built examples/quickstart ($(go version | cut -d' ' -f3))"

  # 3. Against a live server: run the example and check its lines.
  if [ -n "${1:-}" ]; then
    local out rc=0
    out="$("$TMP/quickstart" -addr "$1" -timeout "${DRIFTWISE_TIMEOUT:-30s}" 2>&1)" || rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || die "quickstart exited $rc"
    local pattern
    for pattern in '^upserted 5$' '^ingested 2 events' '^recommended [1-9][0-9]* items' \
      '^feedback answered: [1-9][0-9]* items .*recorded=true' '^OK$'; do
      grep -Eq "$pattern" <<<"$out" || die "quickstart output lacks /$pattern/"
    done
    log "quickstart against $1 passed"
  fi
  echo "go client: OK"
}

main "$@"
