#!/usr/bin/env bash
# Offline check of the Kubernetes manifests (deploy/k8s): each kustomization (base and every overlay) is rendered
# with `kubectl kustomize` and validated against Kubernetes 1.30's schemas with `kubernetes-validate --strict`
# (unknown fields, wrong types, unknown kinds), then held to what a schema cannot see: the TF Serving Service is
# headless, the gateway's readiness is a gRPC probe, no PodDisruptionBudget blocks every drain, the gateway's
# configuration (gateway.toml with the container's flags and SEGMENTATION_* variables, its files found through the
# pod's volumes) is accepted by the gateway's own reader, every pod is isolated by NetworkPolicies and meets the
# restricted Pod Security level, and no Service exposes the gateway's metrics. Every overlay but dev is production:
# there the gateway must authenticate its callers over TLS, every image must be pinned by digest, no Secret may come
# from the repository, and the namespace must enforce the restricted level. No cluster needed.
#   bash deploy/check-manifests.sh            (from the repository root; tools on PATH or in .venv/bin)
#   bash deploy/check-manifests.sh --release  (also fails on placeholder image digests: before a release)
set -euo pipefail
cd "$(dirname "$0")/.."

RELEASE=0
case "${1:-}" in
  "") ;;
  --release) RELEASE=1 ;;
  *) echo "usage: bash deploy/check-manifests.sh [--release]" >&2; exit 2 ;;
esac

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

# The checks a schema cannot make, on one rendered kustomization: $1 the YAML, $2 its kind (base, dev or
# production), $3 1 for a release. Prints the number of resources and then any notes, one a line; or the problems,
# one a line, and exits 1.
semantic_check() {
  "$PY" - "$1" "$2" "$3" <<'PY'
import base64, pathlib, re, sys, tempfile
import yaml
from service.config_file import SERVER_KEYS
from service.flags import load_config

rendered, mode, release = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
production = mode == "production"
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
problems, notes = [], []

def find(kind, name):
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)

def of_kind(kind):
    return [d for d in docs if d["kind"] == kind]

def selects(selector, labels):
    """Whether a label selector selects these labels (matchLabels: the manifests use nothing else)."""
    if selector.get("matchExpressions"):
        problems.append("check-manifests.sh reads matchLabels only; a selector uses matchExpressions")
        return False
    return selector.get("matchLabels", {}).items() <= labels.items()

def port_of(address):
    return int(address.rpartition(":")[2]) if address else None

tfs = find("Service", "tfserving")
if tfs is None or tfs["spec"].get("clusterIP") != "None":
    problems.append("Service tfserving must be headless (clusterIP: None): the gateway balances over its pods")

gateway = find("Deployment", "deeplab-gateway")
pod = gateway["spec"]["template"]["spec"] if gateway else {}
gateway_labels = gateway["spec"]["template"]["metadata"]["labels"] if gateway else {}
container = next((c for c in pod.get("containers", []) if c["name"] == "gateway"), None)
if container is None:
    problems.append("Deployment deeplab-gateway with a container named gateway is missing")
elif "grpc" not in container.get("readinessProbe", {}):
    problems.append("the gateway's readinessProbe must be a grpc probe (grpc.health.v1 follows the models)")

# A PodDisruptionBudget whose minAvailable is all the pods there are allows no eviction: drains hang.
for pdb in of_kind("PodDisruptionBudget"):
    selector = pdb["spec"]["selector"]["matchLabels"]
    for dep in of_kind("Deployment"):
        if selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items():
            hpa = next((h for h in of_kind("HorizontalPodAutoscaler")
                        if h["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]), None)
            replicas = hpa["spec"].get("minReplicas", 1) if hpa else dep["spec"].get("replicas", 1)
            if pdb["spec"].get("minAvailable", 0) >= replicas:
                problems.append(f"PodDisruptionBudget {pdb['metadata']['name']}: minAvailable "
                                f"{pdb['spec']['minAvailable']} of {replicas} pod(s) blocks every drain")

def gateway_config(folder):
    """The gateway's Config as its pod would read it: the container's flags and SEGMENTATION_* variables applied by
    the gateway's own loader, every file found through the pod's volumes. A ConfigMap or Secret rendered here is
    written out with its data; one created outside these manifests (prod's Secrets) gets empty stand-in files."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    places = []  # (mountPath, local folder, whether files may be made up there), longest mountPath first
    for i, mount in enumerate(sorted(container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))):
        volume_folder = pathlib.Path(folder, str(i))
        volume_folder.mkdir()
        place = volume_folder / mount.get("subPath", "")  # a subPath mounts one file or folder of the volume
        volume = volumes.get(mount["name"], {})
        kind = "ConfigMap" if "configMap" in volume else "Secret" if "secret" in volume else None
        source = volume.get("configMap") or volume.get("secret") or {}
        name = source.get("name") or source.get("secretName")
        if kind == "Secret" and "subPath" in mount:
            problems.append(f"the gateway mounts Secret {name} with a subPath, which never sees the Secret change "
                            "(a renewed certificate, a revoked token): mount the volume whole")
        found = find(kind, name) if kind else None
        if found is not None:
            data = dict(found.get("data", {}))
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(found.get("stringData", {}))
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    problems.append(f"volume {mount['name']}: {kind} {name} has no key {item['key']}")
                    continue
                (volume_folder / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                (volume_folder / item["path"]).write_text(data[item["key"]])
        elif kind is not None:
            for item in source.get("items", []):
                (volume_folder / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                (volume_folder / item["path"]).touch()
        made_up = kind is not None and found is None and not source.get("items")
        places.append((mount["mountPath"].rstrip("/"), place, made_up))

    def local(path, what):
        """Where `path` in the container is here; a problem (and None) when it is on no volume."""
        for mount_path, place, made_up in places:
            if path == mount_path or path.startswith(mount_path + "/"):
                here = place / path[len(mount_path):].lstrip("/")
                if made_up and not here.exists():
                    here.parent.mkdir(parents=True, exist_ok=True)
                    here.touch()
                return str(here)
        problems.append(f"{what} = {path!r} is on no volume the gateway mounts")
        return None

    args = [str(a) for a in container.get("args", [])]
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    config_path = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"), None)
    config_path = config_path or env.get("SEGMENTATION_CONFIG")
    if not config_path:
        problems.append("the gateway is given no --config (or SEGMENTATION_CONFIG)")
        return None
    config_file = local(config_path, "--config")
    if config_file is None or not pathlib.Path(config_file).is_file():
        problems.append(f"the gateway's config file {config_path} is not in the volume mounted there")
        return None
    # Absolute file paths in the file, the flags and the variables are the container's: point them here.
    known = len(problems)
    text = pathlib.Path(config_file).read_text()
    for key, value in re.findall(r'^\s*(\w+)\s*=\s*"(/[^"]*)"', text, flags=re.M):
        if key in SERVER_KEYS and SERVER_KEYS[key].key.path and (here := local(value, f"server.{key}")):
            text = text.replace(f'"{value}"', f'"{here}"')
    pathlib.Path(config_file).write_text(text)
    for name, value in env.items():
        key = name.removeprefix("SEGMENTATION_").lower()
        if key in SERVER_KEYS and SERVER_KEYS[key].key.path and value.startswith("/"):
            env[name] = local(value, name) or value
    for i, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if equals and value.startswith("/"):
            args[i] = f"{flag}={local(value, flag) or value}"
        elif arg.startswith("/"):
            args[i] = local(arg, args[i - 1] if i else "argument") or arg
    env.pop("SEGMENTATION_CONFIG", None)
    if len(problems) > known:  # a file on no volume: the loader would only say it cannot read it
        return None
    try:
        return load_config(args if "--config" in args else ["--config", config_file, *args], env)
    except Exception as exc:  # the loader's one-line ConfigError, or anything unexpected
        problems.append(f"the gateway's configuration: {exc}")
        return None

config = None
if container is not None:
    with tempfile.TemporaryDirectory() as folder:
        config = gateway_config(folder)
        if config is not None and config.auth_tokens and pathlib.Path(config.auth_tokens).stat().st_size:
            # A tokens file rendered here (overlays/dev's): read as the gateway will.
            from service.auth.files import parse_entries, token_digest
            try:
                if not parse_entries(pathlib.Path(config.auth_tokens).read_text(), "tokens", token_digest):
                    problems.append("the gateway's tokens file lists no token: every call would be refused")
            except Exception as exc:
                problems.append(f"the gateway's tokens file: {exc}")

if config is not None:
    sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    if pod.get("terminationGracePeriodSeconds", 30) <= sleep + config.shutdown_grace_s:
        problems.append(f"terminationGracePeriodSeconds must exceed the preStop sleep ({sleep} s) plus "
                        f"shutdown_grace ({config.shutdown_grace_s} s), or draining calls are killed")
    health = container.get("readinessProbe", {}).get("grpc", {}).get("port")
    if health is not None and health != port_of(config.health_listen):
        problems.append(f"the gateway's readiness probe asks port {health}, but health_listen is "
                        f"{config.health_listen or 'off'}: the probe must ask the plaintext health port")
    if config.tls_client_ca:
        for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
            if container.get(probe, {}).get("httpGet", {}).get("scheme") == "HTTPS":
                problems.append(f"the gateway's {probe} is HTTPS, but tls_client_ca makes the HTTP port require a "
                                "client certificate, which the kubelet does not present")
    if production:
        if not (config.auth_tokens or config.auth_jwks or config.tls_client_ca):
            problems.append("the gateway authenticates no caller: set auth_tokens (a Secret), auth_jwks or "
                            "tls_client_ca in production")
        if not config.tls_cert:
            problems.append("the gateway's port is plaintext: bearer tokens would cross the network readable; "
                            "set tls_cert and tls_key in production")
        if config.reflection:
            notes.append("grpc.reflection is on: it answers without a token")
    # Clients' Services carry the API, not the metrics: these are scraped from the pods.
    metrics = [p for c in pod.get("containers", []) for p in c.get("ports", [])
               if p.get("name") == "metrics" or p["containerPort"] == port_of(config.metrics_listen)]
    for service in of_kind("Service"):
        selector = service["spec"].get("selector") or {}
        if selector and selector.items() <= gateway_labels.items():
            for port in service["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                if any(target in (p.get("name"), p["containerPort"]) for p in metrics):
                    problems.append(f"Service {service['metadata']['name']} exposes the gateway's metrics port "
                                    f"({target}): scrape the pods instead")

# NetworkPolicies: every pod is isolated both ways, every port a policy of its own opens is one it listens on, and
# the gateway may reach DNS and its backends' ports.
policies = of_kind("NetworkPolicy")
for dep in of_kind("Deployment"):
    name, labels = dep["metadata"]["name"], dep["spec"]["template"]["metadata"]["labels"]
    spec = dep["spec"]["template"]["spec"]
    selecting = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
    kinds = {t for p in selecting for t in p["spec"].get("policyTypes", ["Ingress"])}
    for kind in ("Ingress", "Egress"):
        if kind not in kinds:
            problems.append(f"Deployment {name}: no NetworkPolicy isolates its pods for {kind.lower()} "
                            "(default-deny.yaml, and a policy of its own)")
    listening = {v for c in spec.get("containers", []) for p in c.get("ports", [])
                 for v in (p.get("name"), p["containerPort"]) if v is not None}
    own = [p for p in selecting if p["spec"]["podSelector"].get("matchLabels")]
    for policy in own:
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if port.get("port") not in listening:
                    problems.append(f"NetworkPolicy {policy['metadata']['name']} lets in port {port.get('port')}, "
                                    f"on which Deployment {name}'s pods do not listen")
    if dep is gateway and config is not None:
        egress = [rule for p in selecting if "Egress" in p["spec"].get("policyTypes", [])
                  for rule in p["spec"].get("egress", [])]
        def reaches(number):
            return any(not r.get("ports") or any(p.get("port") == number for p in r["ports"]) for r in egress)
        wanted = {53: "DNS"}
        for backend in config.backends:
            for target in backend.targets:
                if re.search(r":\d+$", target):
                    wanted[port_of(target)] = f"backend {backend.name} ({target})"
        for number, what in wanted.items():
            if not reaches(number):
                problems.append(f"the gateway's NetworkPolicies let it reach no port {number}: {what}")

# The restricted Pod Security level (and the project's own read-only root filesystem), on every pod; the namespace
# of a production overlay enforces it. A hostPath volume is let through only where no level is enforced (dev).
namespaces = of_kind("Namespace")
enforced = {ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") for ns in namespaces}
for ns in namespaces:
    level = ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
    if production and level != "restricted":
        problems.append(f"Namespace {ns['metadata']['name']} must be labelled "
                        "pod-security.kubernetes.io/enforce: restricted")
allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
if namespaces and enforced == {None} and not production:
    allowed.add("hostPath")
accounts = {a["metadata"]["name"]: a for a in of_kind("ServiceAccount")}
for dep in of_kind("Deployment"):
    name, spec = dep["metadata"]["name"], dep["spec"]["template"]["spec"]
    where = f"Deployment {name}"
    context = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{where}: {key}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed:
            problems.append(f"{where}: volume {volume['name']} is a {', '.join(sorted(kinds))} volume, which the "
                            "restricted level does not allow")
    account = accounts.get(spec.get("serviceAccountName", "default"), {})
    if spec.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True)) is not False:
        problems.append(f"{where}: mounts a Kubernetes API token (automountServiceAccountToken: false)")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        own = c.get("securityContext", {})
        at = f"{where}, container {c['name']}"
        def setting(key):
            return own.get(key, context.get(key))
        if setting("runAsNonRoot") is not True or setting("runAsUser") == 0:
            problems.append(f"{at}: runAsNonRoot: true and a non-zero runAsUser")
        if (setting("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{at}: seccompProfile RuntimeDefault")
        if own.get("allowPrivilegeEscalation") is not False or own.get("privileged"):
            problems.append(f"{at}: allowPrivilegeEscalation: false, and not privileged")
        capabilities = own.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{at}: capabilities must drop ALL and add nothing but NET_BIND_SERVICE")
        if own.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem: true")
        if any("hostPort" in p for p in c.get("ports", [])):
            problems.append(f"{at}: hostPort")

# Production: images pinned by digest, and credentials from outside the repository.
PLACEHOLDER = "sha256:" + "0" * 64
if production:
    placeholders = []
    for dep in of_kind("Deployment"):
        spec = dep["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            image = c["image"]
            if not re.search(r"@sha256:[0-9a-f]{64}$", image):
                problems.append(f"Deployment {dep['metadata']['name']}, container {c['name']}: image {image} is not "
                                "pinned by digest (digest: in the overlay's images)")
            elif image.endswith(PLACEHOLDER):
                placeholders.append(image.rpartition("@")[0])
    if placeholders and release:
        problems.extend(f"image {image}: the digest is the placeholder; set the real one" for image in placeholders)
    elif placeholders:
        notes.append(f"placeholder digests (set at release; --release fails on them): {', '.join(placeholders)}")
    for secret in of_kind("Secret"):
        problems.append(f"Secret {secret['metadata']['name']} is rendered: production credentials are created in "
                        "the cluster, never generated from files in the repository")

print("\n".join(problems) if problems else "\n".join([str(len(docs)), *notes]))
sys.exit(1 if problems else 0)
PY
}

status=0
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  case "$dir" in
    deploy/k8s/base) mode=base ;;
    deploy/k8s/overlays/dev) mode=dev ;;
    *) mode=production ;;
  esac
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
  if ! checked=$(semantic_check "$rendered" "$mode" "$RELEASE"); then
    echo "$dir: FAIL:" && sed 's/^/  /' <<<"$checked"
    status=1 && continue
  fi
  count=${checked%%$'\n'*}
  passed=$(grep -cE '^INFO .* passed for resource' <<<"$report" || true)
  if [ "$passed" != "$count" ]; then
    echo "$dir: FAIL: $count resources rendered, but kubernetes-validate passed $passed"
    status=1 && continue
  fi
  echo "$dir: $count resources valid for Kubernetes ${K8S_VERSION%.*} ($mode)"
  if [ "$checked" != "$count" ]; then
    sed '1d; s/^/  note: /' <<<"$checked"
  fi
done
exit "$status"
