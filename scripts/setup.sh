#!/usr/bin/env bash
# Sets up everything Lifeboat's demo and tests need on Debian 12 (run as root, or with
# the packages already present): system packages, a virtual environment, and the
# package with its development extras. Safe to run again.
set -euo pipefail
venv="${1:-.venv}"

packages=(python3 python3-venv python3-dev gcc make git ca-certificates)
# PostgreSQL 15 server, client (pg_basebackup, pg_amcheck, pgbench) and contrib (amcheck), and
# runuser (util-linux): the PostgreSQL tests and the demo run real clusters as user postgres.
packages+=(postgresql-15 postgresql-client-15 postgresql-contrib util-linux)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=python3
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"
# Storage servers the tests start (Azurite, sshd); see the script's header.
bash "$(dirname "$0")/install-test-servers.sh" "$venv"
"$venv/bin/python" -m compileall -q src  # editable install: byte-compile once (environments often set PYTHONDONTWRITEBYTECODE)
