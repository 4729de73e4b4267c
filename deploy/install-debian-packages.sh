#!/usr/bin/env bash
# deploy/install-debian-packages.sh WHO PACKAGE...: installs the Debian packages that are missing (apt is asked only
# then), as root; WHO names the caller in messages. Used by clients/install-toolchains.sh and tests/install-browser.sh.
set -euo pipefail
who=$1
shift
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "$who: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "$who: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
