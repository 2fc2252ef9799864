#!/usr/bin/env bash
# Install the given Debian packages when their programs are missing; `apt-get update` once, first.
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=("$pkg") ;;
    prometheus) command -v promtool >/dev/null || missing+=("$pkg") ;;
    prometheus-alertmanager) command -v amtool >/dev/null || missing+=("$pkg") ;;
    chromium) command -v chromium >/dev/null || missing+=("$pkg") ;;
    nginx) command -v nginx >/dev/null || missing+=("$pkg") ;;
    wrk) command -v wrk >/dev/null || missing+=("$pkg") ;;
    *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
