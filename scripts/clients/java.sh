#!/usr/bin/env bash
# Build and check the Java client (clients/java); with ADDR, also run its quickstart against a server.
#
#   scripts/clients/java.sh              # install the Debian packages if missing, generate the stubs
#                                        # from protos/ into build/, compile them + example (offline)
#   scripts/clients/java.sh HOST:PORT    # ... then run dev.driftwise.examples.Quickstart against a
#                                        # running `driftwise serve` and check its output
#   scripts/clients/java.sh --run-only HOST:PORT   # only that run, with the last build (no javac)
#
# The quickstart reads DRIFTWISE_TLS_CA, DRIFTWISE_TLS_CERT, DRIFTWISE_TLS_KEY and DRIFTWISE_TOKEN
# from the environment (TLS, mutual TLS, bearer token): set them to run it against a secure server.
#
# The stubs are generated at build time, never committed: buf generate with clients/java/buf.gen.yaml
# writes them to clients/java/build/generated-sources (a stale copy cannot exist).
# Everything comes from Debian packages: protoc 3.21 and the grpc-java 1.41.3 plugin to generate,
# javac with an explicit classpath of the jars under /usr/share/java to compile (no Maven, no network
# beyond apt). Build output goes to clients/java/build/ (gitignored). Idempotent; exits non-zero on
# the first failure and ends with "java client: OK".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLIENT="$ROOT/clients/java"
BUILD="$CLIENT/build"
GENERATED="$BUILD/generated-sources"
RUN_ONLY=""
if [[ "${1:-}" == "--run-only" ]]; then RUN_ONLY=1; shift; fi
ADDR="${1:-}"

say() { printf '[java] %s\n' "$*"; }
fail() { printf '[java] FAILED: %s\n' "$*" >&2; exit 1; }

# Steps 1-3 (install, generate, compile), skipped by --run-only. Not indented, to keep the diff small.
build_and_check() {
# --- 1. Debian packages (only what is missing; quiet) -------------------------------------------
PACKAGES=(
  protobuf-compiler                    # /usr/bin/protoc 3.21, for buf's protoc_builtin: java
  protobuf-compiler-grpc-java-plugin   # /usr/bin/grpc_java_plugin 1.41.3
  libprotobuf-java                     # protobuf.jar 3.21.12
  libgrpc-java                         # grpc-{api,context,core,netty,protobuf,protobuf-lite,stub}.jar 1.41.3
  libnetty-java                        # netty 4.1.48, individual jars
  libperfmark-java libgoogle-gson-java libguava-java
  libgeronimo-annotation-1.3-spec-java # javax.annotation.Generated, used by the generated stubs
  libnetty-tcnative-java libnetty-tcnative-jni # TLS: Debian's Netty has no JDK ALPN, OpenSSL's is used
)
command -v javac >/dev/null 2>&1 || PACKAGES+=(default-jdk-headless)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  apt_log="$(mktemp)"
  apt_install() { $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; }
  if ! apt_install; then # stale package lists: update once and retry
    $SUDO apt-get update -qq -o DPkg::Lock::Timeout=600 >>"$apt_log" 2>&1 && apt_install || { cat "$apt_log" >&2; fail "apt-get install failed"; }
  fi
  rm -f "$apt_log"
fi
[[ -x /usr/bin/protoc && -x /usr/bin/grpc_java_plugin ]] || fail "protoc or grpc_java_plugin missing after install"

# --- 2. Generate the stubs from protos/ -----------------------------------------------------------
BUF="${BUF:-}"
if [[ -z "$BUF" ]]; then
  if [[ -x "$ROOT/.venv/bin/buf" ]]; then BUF="$ROOT/.venv/bin/buf"; else BUF="$(command -v buf || true)"; fi
fi
[[ -n "$BUF" ]] || fail "buf not found: run scripts/setup.sh (PyPI buf-bin in .venv) or set BUF=/path/to/buf"
rm -rf "$GENERATED"
(cd "$ROOT" && "$BUF" generate --template clients/java/buf.gen.yaml)
say "generated $(find "$GENERATED" -name '*.java' | wc -l) files into clients/java/build/generated-sources"

# --- 3. Compile with an explicit classpath of Debian jars ---------------------------------------
JARS=(
  grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
  protobuf guava perfmark-api gson geronimo-annotation-1.3-spec
  netty-common netty-buffer netty-resolver netty-transport netty-transport-native-unix-common
  netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-handler netty-handler-proxy
  netty-tcnative
)
CP=""
for j in "${JARS[@]}"; do
  f="/usr/share/java/$j.jar"
  [[ -f "$f" ]] || fail "missing $f"
  CP="${CP:+$CP:}$f"
done
# Annotation-only jars: not needed at run time, they only quiet javac about grpc's annotations.
COMPILE_CP="$CP"
for j in jsr305 error-prone-annotations; do
  if [[ -f "/usr/share/java/$j.jar" ]]; then COMPILE_CP="$COMPILE_CP:/usr/share/java/$j.jar"; fi
done

rm -rf "$BUILD/classes"
mkdir -p "$BUILD/classes"
find "$CLIENT/src/main/java" "$GENERATED" -name '*.java' | sort >"$BUILD/sources.txt"
javac --release 11 -encoding UTF-8 -nowarn -Xlint:none -implicit:none \
  -cp "$COMPILE_CP" -d "$BUILD/classes" "@$BUILD/sources.txt"
jar --create --file "$BUILD/driftwise-client-java.jar" -C "$BUILD/classes" .
printf '%s\n' "$CP" >"$BUILD/classpath.txt"
# TLS: Debian patched JDK ALPN out of its Netty, so grpc-netty needs netty-tcnative (OpenSSL). Netty
# loads it only as libnetty_tcnative.so and rejects a symlink to Debian's libnetty-tcnative.so: copy it.
mkdir -p "$BUILD/native"
tcnative_so="$(dpkg -L libnetty-tcnative-jni | grep '/libnetty-tcnative\.so$' | head -n 1)"
[[ -f "$tcnative_so" ]] || fail "libnetty-tcnative.so not found (libnetty-tcnative-jni)"
cp -f "$tcnative_so" "$BUILD/native/libnetty_tcnative.so"
# Run by hand: java -Djava.library.path=build/native -cp build/classes:$(cat build/classpath.txt) CLASS
say "compiled $(wc -l <"$BUILD/sources.txt") sources into clients/java/build/driftwise-client-java.jar"
}

if [[ -n "$RUN_ONLY" ]]; then
  [[ -n "$ADDR" ]] || fail "--run-only needs HOST:PORT"
  [[ -f "$BUILD/classpath.txt" && -f "$BUILD/native/libnetty_tcnative.so" ]] || fail "no build: run scripts/clients/java.sh first"
  CP="$(cat "$BUILD/classpath.txt")"
else
  build_and_check
fi

# --- 4. Optionally run the quickstart against a live server -------------------------------------
if [[ -n "$ADDR" ]]; then
  say "running dev.driftwise.examples.Quickstart against $ADDR"
  out="$BUILD/quickstart.out"
  if ! DRIFTWISE_ADDR="$ADDR" java -Djava.library.path="$BUILD/native" -cp "$BUILD/classes:$CP" dev.driftwise.examples.Quickstart >"$out" 2>"$BUILD/quickstart.err"; then
    cat "$out"; cat "$BUILD/quickstart.err" >&2
    fail "quickstart exited non-zero"
  fi
  cat "$out"
  grep -Eq '^upserted 5$' "$out" || fail "expected 'upserted 5'"
  grep -Eq '^ingested 2 events ' "$out" || fail "expected 'ingested 2 events'"
  grep -Eq '^recommended [1-9][0-9]* items' "$out" || fail "expected 'recommended N items' with N >= 1"
  grep -Eq '^feedback answered: [1-9][0-9]* items .*recorded=true' "$out" || fail "expected 'feedback answered: K items' with K >= 1, recorded"
  [[ "$(tail -n 1 "$out")" == "OK" ]] || fail "expected a final OK line"
fi

echo "java client: OK"
