#!/usr/bin/env bash
# Validates the Kubernetes manifests offline against the Kubernetes JSON schemas
# shipped inside the PyPI package kubernetes-validate (strict: unknown fields are
# errors; every bundled Kubernetes version from $MIN_K8S on), plus the references
# the schemas cannot see: selectors match the pod labels, the HPA and configMapRefs
# name existing objects, probes use declared ports, kustomization.yaml lists every
# manifest. First proves the validator rejects deliberately broken manifests.
#
# usage: scripts/validate-k8s.sh [DIR]     (default docs/deploy/kubernetes)
#
# The package is installed once (network: PyPI) into a virtualenv under
# ${WHISPER_STT_CACHE:-~/.cache/whisper-stt}/venv-kubernetes-validate-<version>;
# validation itself needs no network.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/docs/deploy/kubernetes}
version=1.37.0
min_k8s=${MIN_K8S:-1.28}
venv=$stt_cache/venv-kubernetes-validate-$version

if ! "$venv/bin/python" -c "import kubernetes_validate" 2>/dev/null; then
  echo "installing kubernetes-validate $version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version" >&2
fi

check() { # check DIR: validate every manifest in DIR; prints results, exit status 1 on any error
  "$venv/bin/python" - "$1" "$min_k8s" <<'EOF'
import glob, os, sys
import yaml
import kubernetes_validate as kv
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, all_versions, major_minor

folder, min_k8s = sys.argv[1], sys.argv[2]
def key(v): return tuple(int(x) for x in major_minor(v).split("."))
versions = sorted({major_minor(v) for v in all_versions() if key(v) >= key(min_k8s)}, key=key)
errors = []
objects = []  # (file, resource)
kustomizations = []
files = sorted(glob.glob(os.path.join(folder, "**", "*.y*ml"), recursive=True))
if not files:
    errors.append(f"{folder}: no manifests")
for path in files:
    name = os.path.relpath(path, folder)
    try:
        docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{name}: not YAML: {e}")
        continue
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            errors.append(f"{name}: a document without kind/apiVersion")
            continue
        if doc["kind"] == "Kustomization":
            kustomizations.append((path, doc))
            continue
        objects.append((name, doc))
        for v in versions:
            try:
                kv.validate(doc, v, strict=True)
            except ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                errors.append(f"{name}: {doc['kind']}/{doc.get('metadata', {}).get('name')} "
                              f"against {v}: {where}: {e.message}")
                break
            except SchemaNotFoundError as e:
                errors.append(f"{name}: {e.message}")
                break

# What the schemas cannot see.
by_kind = {}
for name, o in objects:
    by_kind.setdefault(o["kind"], {})[o.get("metadata", {}).get("name")] = (name, o)
def subset(sel, labels): return bool(sel) and all(labels.get(k) == v for k, v in sel.items())
pod_labels = {}
for dname, (name, d) in by_kind.get("Deployment", {}).items():
    spec = d.get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    pod_labels[dname] = labels
    if not subset(spec.get("selector", {}).get("matchLabels", {}), labels):
        errors.append(f"{name}: Deployment {dname}: selector does not match the pod labels")
    pod = spec.get("template", {}).get("spec", {})
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        for ref in c.get("envFrom", []):
            cm = ref.get("configMapRef", {}).get("name")
            if cm and cm not in by_kind.get("ConfigMap", {}):
                errors.append(f"{name}: container {c['name']}: no ConfigMap {cm}")
        ports = {p.get("name") for p in c.get("ports", [])} | {p.get("containerPort") for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if port is not None and port not in ports:
                errors.append(f"{name}: container {c['name']}: {probe} uses undeclared port {port}")
for kind in ("Service", "PodDisruptionBudget"):
    for oname, (name, o) in by_kind.get(kind, {}).items():
        sel = o["spec"].get("selector", {})
        sel = sel.get("matchLabels", {}) if kind == "PodDisruptionBudget" else sel
        if not any(subset(sel, labels) for labels in pod_labels.values()):
            errors.append(f"{name}: {kind} {oname}: selector matches no Deployment's pods")
for oname, (name, o) in by_kind.get("HorizontalPodAutoscaler", {}).items():
    ref = o["spec"]["scaleTargetRef"]
    if ref.get("name") not in by_kind.get(ref.get("kind"), {}):
        errors.append(f"{name}: HorizontalPodAutoscaler {oname}: no {ref.get('kind')} {ref.get('name')}")
for path, k in kustomizations:
    base = os.path.dirname(path)
    listed = {os.path.normpath(os.path.join(base, r)) for r in k.get("resources", [])}
    for r in sorted(listed):
        if not os.path.exists(r):
            errors.append(f"{os.path.relpath(path, folder)}: lists missing {os.path.relpath(r, folder)}")
    for p in files:
        if os.path.dirname(p) == base and p != path and os.path.normpath(p) not in listed:
            errors.append(f"{os.path.relpath(path, folder)}: does not list {os.path.relpath(p, folder)}")

for e in errors:
    print(f"ERROR {e}")
print(f"{len(objects)} object(s) in {len(files)} file(s) checked against Kubernetes "
      f"{versions[0]}..{versions[-1]} (strict): {len(errors)} error(s)")
sys.exit(1 if errors else 0)
EOF
}

passed=0 failed=0
# Self-check: each broken manifest must be rejected.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
broken() { # broken NAME FILE SED-EXPRESSION: FILE edited by SED-EXPRESSION must fail
  mkdir -p "$tmp/$1"
  cp "$dir"/*.yaml "$tmp/$1/"
  sed -i "$3" "$tmp/$1/$2"
  if cmp -s "$dir/$2" "$tmp/$1/$2"; then
    echo "FAIL self-check $1: the edit changed nothing"
    failed=$((failed + 1))
  elif out=$(check "$tmp/$1"); then
    echo "FAIL self-check $1: the broken manifest passed"
    failed=$((failed + 1))
  else
    echo "ok   self-check $1 is rejected: $(grep -m1 '^ERROR' <<<"$out")"
    passed=$((passed + 1))
  fi
}
broken "wrong type" deployment.yaml 's/^  replicas: 2$/  replicas: two/'
broken "unknown field" deployment.yaml \
  's/^\(\s*\)imagePullPolicy: IfNotPresent$/\1imagePullPolicy: IfNotPresent\n\1imagePolicy: Always/'
broken "unknown kind" deployment.yaml 's/^kind: Deployment$/kind: Deploymnet/'
broken "selector mismatch" deployment.yaml \
  '0,/^      app.kubernetes.io\/name: whisper-stt$/s//      app.kubernetes.io\/name: other/'
broken "service selects nothing" service.yaml 's/^    app.kubernetes.io\/component: server$/    app.kubernetes.io\/component: other/'
broken "HPA target missing" hpa.yaml 's/^    name: whisper-stt$/    name: whisper-sst/'

if out=$(check "$dir"); then
  echo "ok   $out"
  passed=$((passed + 1))
else
  printf '%s\n' "$out"
  echo "FAIL $dir"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
