# shellcheck shell=bash
# Sourced by the CI scripts: install Debian packages by name, explicitly.
#
#   ensure_debian_packages PACKAGE...
#
# Every package a script needs is named, and each one is checked with dpkg-query (not by probing
# for a command: a command can be present while a library the same step needs is not, as when
# gcc-aarch64-linux-gnu was installed without its Recommends and libc6-dev-arm64-cross was
# missing). Missing ones are installed with --no-install-recommends, so nothing arrives by
# accident that a fresh machine would lack. Uses sudo when not root.

ensure_debian_packages() {
    local missing=() pkg status sudo=""
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || sudo=sudo
    printf '  installing Debian packages: %s\n' "${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { printf 'error: apt-get could not install: %s\n' "${missing[*]}" >&2; return 1; }
}
