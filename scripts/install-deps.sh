#!/usr/bin/env bash
# Installs the Debian packages Coffer needs to build, test and run.
#   scripts/install-deps.sh           install what is missing (as root), or print the command
#   scripts/install-deps.sh --check   exit 0 if everything is installed, 1 otherwise (no changes)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang
  libssl-dev openssl curl
  libjansson-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql
  softhsm2 libp11-kit-dev libseccomp-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "Coffer needs these Debian packages: ${missing[*]}" >&2
  echo "Run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
