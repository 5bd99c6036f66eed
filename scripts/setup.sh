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
# The logical sources' real servers and tools (docs/sources.md): MariaDB (+ mariabackup), Redis,
# OpenLDAP's slapd and its clients, SQLite. The tests start their own throwaway instances as
# the unprivileged user 'srvtest' on free ports; the packages' own services are not needed.
packages+=(mariadb-server mariadb-backup mariadb-client redis-server redis-tools slapd ldap-utils sqlite3)
# Prometheus' own checker (promtool): the shipped alert rules are loaded and unit-tested with it
# (deploy/prometheus/); the server it comes with is not started.
packages+=(prometheus)
# The dashboard's tests drive Debian's headless Chromium through chromedriver (selenium).
packages+=(chromium chromium-driver fonts-dejavu-core)
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
  # The servers' packages must not start their system services (3306, 6379, 389): the tests
  # start their own. A policy-rc.d that refuses every start, only while installing.
  policy=/usr/sbin/policy-rc.d
  placed_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && placed_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -n "$placed_policy" ] && rm -f "$policy"
fi
# The unprivileged user the test servers (MariaDB, Redis, slapd) run as.
if ! id srvtest >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin srvtest
  else
    echo "setup: the user 'srvtest' is missing (run as root, or create it)" >&2
    exit 1
  fi
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
