#!/usr/bin/env bash
# Offline check of the Kubernetes manifests (deploy/k8s): each kustomization (base and every overlay) is rendered
# with `kubectl kustomize` and validated against Kubernetes 1.30's schemas with `kubernetes-validate --strict`
# (unknown fields, wrong types, unknown kinds), then held to what a schema cannot see: the TF Serving Service is
# headless, the gateway's readiness is a gRPC probe, no PodDisruptionBudget blocks every drain, and the gateway's
# TOML is accepted by the gateway's own config reader. No cluster needed.
#   bash deploy/check-manifests.sh          (from the repository root; tools on PATH or in .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.30.0

tool() {  # the first of: $1 on PATH, .venv/bin/$1, the fallback $2
  command -v "$1" 2>/dev/null || { [ -x ".venv/bin/$1" ] && echo ".venv/bin/$1"; } || echo "${2:-}"
}
KUBECTL=$(tool kubectl /usr/bin/kubectl)
VALIDATE=$(tool kubernetes-validate)
# Python with PyYAML and the gateway's package (service.config_file): the project's venv.
PY=.venv/bin/python
[ -x "$PY" ] || PY=$(tool python3)
for t in "$KUBECTL" "$VALIDATE" "$PY"; do
  if [ -z "$t" ] || ! [ -x "$(command -v "$t")" ]; then
    echo "check-manifests: missing a tool (kubectl, kubernetes-validate, python with PyYAML); run make setup" >&2
    exit 2
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The semantic checks: prints the number of resources, or the problems (one a line) and exits 1.
semantic_check() {
  "$PY" - "$1" <<'PY'
import pathlib, sys, tempfile, tomllib
import yaml
from service.config_file import read_config_file

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
problems = []
def find(kind, name):
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)

tfs = find("Service", "tfserving")
if tfs is None or tfs["spec"].get("clusterIP") != "None":
    problems.append("Service tfserving must be headless (clusterIP: None): the gateway balances over its pods")

gateway = find("Deployment", "deeplab-gateway")
pod = gateway["spec"]["template"]["spec"] if gateway else {}
container = next((c for c in pod.get("containers", []) if c["name"] == "gateway"), None)
if container is None:
    problems.append("Deployment deeplab-gateway with a container named gateway is missing")
elif "grpc" not in container.get("readinessProbe", {}):
    problems.append("the gateway's readinessProbe must be a grpc probe (grpc.health.v1 follows the models)")

# A PodDisruptionBudget whose minAvailable is all the pods there are allows no eviction: drains hang.
for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
    selector = pdb["spec"]["selector"]["matchLabels"]
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        if selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items():
            hpa = next((h for h in docs if h["kind"] == "HorizontalPodAutoscaler"
                        and h["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]), None)
            replicas = hpa["spec"].get("minReplicas", 1) if hpa else dep["spec"].get("replicas", 1)
            if pdb["spec"].get("minAvailable", 0) >= replicas:
                problems.append(f"PodDisruptionBudget {pdb['metadata']['name']}: minAvailable "
                                f"{pdb['spec']['minAvailable']} of {replicas} pod(s) blocks every drain")

for cm in (d for d in docs if d["kind"] == "ConfigMap" and "gateway.toml" in d.get("data", {})):
    with tempfile.TemporaryDirectory() as folder:  # the mounted folder: relative paths are read from it
        for key, value in cm["data"].items():
            (pathlib.Path(folder) / key).write_text(value)
        try:
            read_config_file(pathlib.Path(folder) / "gateway.toml")
        except Exception as exc:  # the reader's one-line ConfigError, or anything unexpected
            problems.append(f"ConfigMap {cm['metadata']['name']}: {exc}")
    if container is not None:
        grace = tomllib.loads(cm["data"]["gateway.toml"]).get("server", {}).get("shutdown_grace", 10.0)
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        if pod.get("terminationGracePeriodSeconds", 30) <= sleep + grace:
            problems.append(f"terminationGracePeriodSeconds must exceed the preStop sleep ({sleep} s) plus "
                            f"shutdown_grace ({grace} s), or draining calls are killed")

print("\n".join(problems) if problems else len(docs))
sys.exit(1 if problems else 0)
PY
}

status=0
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  rendered="$tmp/$(echo "$dir" | tr / _).yaml"
  if ! "$KUBECTL" kustomize "$dir" >"$rendered" 2>"$tmp/stderr"; then
    echo "$dir: FAIL: kubectl kustomize:" && sed 's/^/  /' "$tmp/stderr"
    status=1 && continue
  fi
  # kubernetes-validate exits 0 on a WARN (e.g. an apiVersion it has no schema for): look at what it says too.
  report=$("$VALIDATE" -k "$K8S_VERSION" --strict "$rendered" 2>&1) && validated=1 || validated=0
  if [ "$validated" = 0 ] || grep -qE '^(WARN|ERROR)' <<<"$report"; then
    echo "$dir: FAIL: kubernetes-validate:" && grep -vE '^INFO' <<<"$report" | sed "s|$rendered|rendered|; s/^/  /"
    status=1 && continue
  fi
  if ! count=$(semantic_check "$rendered"); then
    echo "$dir: FAIL:" && sed 's/^/  /' <<<"$count"
    status=1 && continue
  fi
  passed=$(grep -cE '^INFO .* passed for resource' <<<"$report" || true)
  if [ "$passed" != "$count" ]; then
    echo "$dir: FAIL: $count resources rendered, but kubernetes-validate passed $passed"
    status=1 && continue
  fi
  echo "$dir: $count resources valid for Kubernetes ${K8S_VERSION%.*}"
done
exit "$status"
