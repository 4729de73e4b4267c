#!/usr/bin/env bash
# Installs the browser the page's tests drive: Debian's Chromium and its ChromeDriver (/usr/bin/chromium,
# /usr/bin/chromedriver), which Selenium (the `dev` extra) finds on the PATH. A browser build of Selenium's or
# Playwright's own would be a download from outside the package registries, which these machines cannot reach.
# Idempotent: apt is only asked when a package is missing.
set -euo pipefail

# DejaVu: a font for the text in screenshots, whatever else the machine has.
packages=(chromium chromium-driver fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-browser: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-browser: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
