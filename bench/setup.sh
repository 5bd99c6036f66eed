#!/usr/bin/env bash
# Installs the tools the benchmarks measure Lifeboat against (Debian 12 packages):
# restic, Borg, borgmatic, pgBackRest and Barman. Run as root; safe to run again.
set -euo pipefail
packages=(restic borgbackup borgmatic pgbackrest barman barman-cli time)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench setup: missing packages: ${missing[*]} (run as root)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
