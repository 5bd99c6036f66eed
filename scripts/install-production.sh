#!/usr/bin/env bash
# Installs Lifeboat from a wheel ('make dist') the production way (docs/install.md):
#   the program in a virtual environment      /opt/lifeboat            (root-owned, readable by all)
#   on every user's PATH                      /usr/local/bin/lifeboat  -> /opt/lifeboat/bin/lifeboat
#   configuration                             /etc/lifeboat/           root:GROUP 0750 (GROUP: postgres)
#   state (record cache, catalog, audit log)  /var/lib/lifeboat/       USER:GROUP 0750 (2770 for lifeboat)
# so that PostgreSQL's archive_command, the operator's shell and 'lifeboat serve' run the same
# program. Login shells get LIFEBOAT_CONFIG and LIFEBOAT_STATE_DIR from /etc/profile.d/lifeboat.sh,
# so an operator's 'sudo -iu postgres lifeboat …' uses the daemon's configuration, catalog and
# audit log. Safe to run again (an upgrade: run it with the new wheel).
#
#   scripts/install-production.sh [--user USER] [--create-user] [--prefix DIR] [--bin-dir DIR]
#                                 [--etc-dir DIR] [--state-dir DIR] [--profile-dir DIR] [--python PYTHON] WHEEL
#
#   --user USER      who runs Lifeboat: the database's OS user [default: postgres]
#   --create-user    create the system user 'lifeboat' (a member of postgres's group) and run as it
#   --python PYTHON  the interpreter of the environment [default: /usr/bin/python3; 3.11 or newer]
set -euo pipefail

user=postgres
create_user=""
prefix=/opt/lifeboat
bin_dir=/usr/local/bin
etc_dir=/etc/lifeboat
state_dir=/var/lib/lifeboat
profile_dir=/etc/profile.d
python=/usr/bin/python3
wheel=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user="$2"; shift 2 ;;
    --create-user) create_user=1; user=lifeboat; shift ;;
    --prefix) prefix="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --etc-dir) etc_dir="$2"; shift 2 ;;
    --state-dir) state_dir="$2"; shift 2 ;;
    --profile-dir) profile_dir="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install-production: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) wheel="$1"; shift ;;
  esac
done
if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
  echo "install-production: give the wheel to install, e.g. dist/lifeboat-0.1.0-py3-none-any.whl ('make dist')" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-production: run as root (it creates $prefix, $etc_dir and $state_dir)" >&2
  exit 1
fi
wheel="$(realpath "$wheel")"

# The user and its group. A 'lifeboat' user is a member of the database's group, so that it
# may read what PostgreSQL lets its group read (and the server may run 'lifeboat wal-push').
if [ -n "$create_user" ] && ! id lifeboat >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$state_dir" --no-create-home --shell /usr/sbin/nologin lifeboat
  echo "install-production: created the system user lifeboat"
fi
if [ -n "$create_user" ] && getent group postgres >/dev/null; then
  usermod -a -G postgres lifeboat
fi
if ! id "$user" >/dev/null 2>&1; then
  echo "install-production: the user '$user' does not exist (install PostgreSQL first, or pass --create-user)" >&2
  exit 1
fi
# The database's group: PostgreSQL's archive_command (run as postgres) reads the configuration too.
if getent group postgres >/dev/null; then group=postgres; else group="$(id -gn "$user")"; fi
state_mode=0750
if [ "$user" != postgres ] && [ "$group" = postgres ]; then state_mode=2770; fi  # both users write state

# The program: a virtual environment of its own, owned by root, readable and executable by all.
umask 022
if [ ! -x "$prefix/bin/python" ]; then
  "$python" -m venv "$prefix"
fi
stamp="$prefix/.lifeboat-wheel.sha256"
sum="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
  if [ -f "$stamp" ]; then
    # An upgrade: a rebuilt wheel with the same version number replaces the installed one too.
    "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  fi
  echo "$sum" >"$stamp"
fi
mkdir -p "$bin_dir"
ln -sfn "$prefix/bin/lifeboat" "$bin_dir/lifeboat"

# Configuration: root writes it, the user's group reads it (the passphrase file too: 0640).
install -d -m 0750 -o root -g "$group" "$etc_dir"
# State: the user's own.
install -d -m "$state_mode" -o "$user" -g "$group" "$state_dir"

# Every login shell (root's, postgres's, the operator's) uses the same configuration and state.
mkdir -p "$profile_dir"
profile="# Lifeboat's production layout (docs/install.md); written by scripts/install-production.sh
export LIFEBOAT_CONFIG=$etc_dir/lifeboat.yaml
export LIFEBOAT_STATE_DIR=$state_dir"
if [ "$(cat "$profile_dir/lifeboat.sh" 2>/dev/null)" != "$profile" ]; then
  printf '%s\n' "$profile" >"$profile_dir/lifeboat.sh"
  chmod 0644 "$profile_dir/lifeboat.sh"
fi

echo "install-production: $("$bin_dir/lifeboat" --version) in $prefix, $bin_dir/lifeboat; runs as $user:$group"
echo "install-production: configuration in $etc_dir, state in $state_dir (docs/install.md)"
