#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not yet
# installed. Runs apt-get update at most once, and only when something is
# missing, so a machine that already has everything pays nothing.
set -euo pipefail
missing=()
for pkg in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
