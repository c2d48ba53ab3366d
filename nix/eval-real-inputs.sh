#!/usr/bin/env bash
# Evaluates flake.nix with the REAL uv2nix, pyproject.nix, build-system-pkgs and nixpkgs' lib
# (nix/tests/eval-real-inputs.nix): the real uv2nix resolves uv.lock for x86_64-linux and
# aarch64-linux and selects every wheel, the real pyproject.nix builds the package set, the
# overlays of nix/python.nix run on it, and every package, check, app and dev shell must
# instantiate. Only the derivation-producing parts of pkgs stand in (nix/tests/stub-nixpkgs).
#
# The sources are not part of this repository and nothing here downloads them: pass checkouts
# (at the revisions flake.lock pins, for a faithful result):
#
#   nix/eval-real-inputs.sh --nixpkgs-lib DIR --pyproject-nix DIR --uv2nix DIR \
#       --build-system-pkgs DIR [--json OUT.json]
#
#   --nixpkgs-lib        a nixpkgs checkout, or nix-community/nixpkgs.lib (needs DIR/lib)
#   --pyproject-nix      pyproject-nix/pyproject.nix
#   --uv2nix             pyproject-nix/uv2nix
#   --build-system-pkgs  pyproject-nix/build-system-pkgs
#
# Prints, per system, the interpreter, the runtime virtualenv's dependency spec and resolved
# packages (version, wheel), what the dev environment adds, and the .drv of every output.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
die() { printf 'eval-real-inputs: error: %s\n' "$*" >&2; exit 1; }

lib_dir="" pyproject_dir="" uv2nix_dir="" bsp_dir="" json_out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --nixpkgs-lib) lib_dir=${2:?}; shift 2 ;;
        --pyproject-nix) pyproject_dir=${2:?}; shift 2 ;;
        --uv2nix) uv2nix_dir=${2:?}; shift 2 ;;
        --build-system-pkgs) bsp_dir=${2:?}; shift 2 ;;
        --json) json_out=${2:?}; shift 2 ;;
        -h | --help) usage 0 ;;
        *) printf 'eval-real-inputs: unknown argument %s\n\n' "$1" >&2; usage 2 ;;
    esac
done
for pair in "nixpkgs-lib:$lib_dir:lib/default.nix" "pyproject-nix:$pyproject_dir:build/packages.nix" \
    "uv2nix:$uv2nix_dir:lib/workspace.nix" "build-system-pkgs:$bsp_dir:overlay.nix"; do
    IFS=: read -r name dir marker <<<"$pair"
    [ -n "$dir" ] || die "--$name DIR is required (see --help)"
    [ -f "$dir/$marker" ] || die "--$name $dir: no $marker there; is it a $name checkout?"
done
command -v nix-instantiate >/dev/null || die "nix-instantiate not found (Debian: nix-bin)"

abs() { (cd "$1" && pwd); }
lib_dir=$(abs "$lib_dir") pyproject_dir=$(abs "$pyproject_dir")
uv2nix_dir=$(abs "$uv2nix_dir") bsp_dir=$(abs "$bsp_dir")

# No binary cache is reachable; nothing is built, only instantiated.
export NIX_CONFIG="substituters =
build-users-group =
sandbox = false"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$REPO"
# --read-write-mode: the stand-in pkgs is loaded through a builtins.toFile wrapper.
nix-instantiate --read-write-mode --eval --strict --json nix/tests/eval-real-inputs.nix \
    --arg nixpkgsLib "$lib_dir" --arg pyprojectNix "$pyproject_dir" \
    --arg uv2nix "$uv2nix_dir" --arg buildSystemPkgs "$bsp_dir" >"$out"
[ -z "$json_out" ] || cp "$out" "$json_out"

"$PYTHON" - "$out" "$lib_dir" "$pyproject_dir" "$uv2nix_dir" "$bsp_dir" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
print("inputs:", *sys.argv[2:], sep="\n  ")
for system, o in sorted(out.items()):
    print(f"\n{system}: interpreter {o['interpreter']}")
    print(f"  runtime spec {o['runtimeDeps']}: {len(o['runtimePackages'])} packages")
    for name, desc in sorted(o["runtimePackages"].items()):
        print(f"    {name} {desc}")
    print(f"  dev spec {o['devDeps']} adds: {' '.join(sorted(o['devOnlyPackages']))}")
    for kind in ("packages", "checks", "devShells", "venvs", "apps"):
        for name, drv in sorted(o[kind].items()):
            print(f"  {kind}.{name}: {drv}")
PY
