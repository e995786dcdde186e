#!/usr/bin/env bash
# Every dependency a crate declares is used: its name (with - as _) appears in the
# crate's sources (a path `name::`, an import, an attribute). [dependencies] must
# appear in the crate's targets' source folders, [build-dependencies] in its build
# script, [dev-dependencies] anywhere in the crate.
#
# usage: scripts/check-deps.sh      (exit 1 naming each unused dependency)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
metadata=$(mktemp)
trap 'rm -f "$metadata"' EXIT
cargo metadata --format-version 1 --no-deps --locked >"$metadata"
python3 - "$metadata" <<'PY'
import json, os, re, sys

meta = json.load(open(sys.argv[1]))
members = set(meta["workspace_members"])


def sources(paths):
    text = []
    for base in paths:
        if os.path.isfile(base):
            text.append(open(base, encoding="utf-8").read())
        for dirpath, _, files in os.walk(base):
            text += [open(os.path.join(dirpath, f), encoding="utf-8").read()
                     for f in files if f.endswith(".rs")]
    return "\n".join(text)


unused = []
for pkg in meta["packages"]:
    if pkg["id"] not in members:
        continue
    build = [t["src_path"] for t in pkg["targets"] if "custom-build" in t["kind"]]
    targets = [os.path.dirname(t["src_path"]) for t in pkg["targets"] if "custom-build" not in t["kind"]]
    texts = {
        None: sources(targets),
        "build": sources(build),
        "dev": sources([os.path.dirname(pkg["manifest_path"])] + build),
    }
    for dep in pkg["dependencies"]:
        name = (dep.get("rename") or dep["name"]).replace("-", "_")
        if not re.search(r"\b" + re.escape(name) + r"\b", texts[dep["kind"]]):
            unused.append(f"{pkg['name']}: {dep['kind'] or 'normal'} dependency {dep['name']} is never used")
if unused:
    print("\n".join(unused), file=sys.stderr)
    sys.exit(1)
print("every declared dependency is used")
PY
