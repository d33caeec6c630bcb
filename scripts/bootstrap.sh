#!/usr/bin/env bash
# Installs what brine needs on Debian 12. Idempotent: apt runs only when a
# package is missing. Root or sudo; apt only (no network registries besides).
set -euo pipefail
pkgs=(build-essential cmake clang pkg-config libcmocka-dev python3 valgrind
      libpython3-dev) # libpython3-dev: the fuzzers embed CPython (harness/pyembed.c, brief F)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
