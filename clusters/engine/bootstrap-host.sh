#!/usr/bin/env bash
# Host prerequisites for kubedrill on a bare Debian/Ubuntu machine (root): Docker engine,
# debootstrap and a static C toolchain for the offline image builds, and the Python packages.
# On a machine that already has them, this only checks and prints.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
say() { echo "[kubedrill bootstrap] $*" >&2; }
need_pkgs=()
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v gcc >/dev/null || need_pkgs+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
if [ "${KUBEDRILL_BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null; then need_pkgs+=(chromium); fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { say "missing: ${need_pkgs[*]}; install them (needs root + apt)"; exit 2; }
  say "installing ${need_pkgs[*]} (apt-get) ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
command -v go >/dev/null || say "WARNING: no Go toolchain: offline image builds need Go >= 1.24 (cached builds still work)"
python3 -c 'import tox' 2>/dev/null || { say "installing tox (pip)"; python3 -m pip install -q tox; }
bash "$HERE/ensure-docker.sh"
