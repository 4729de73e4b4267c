#!/usr/bin/env bash
# Installs the browser the page's tests drive: Debian's Chromium and its ChromeDriver (/usr/bin/chromium,
# /usr/bin/chromedriver), which Selenium (the `dev` extra) finds on the PATH. A browser build of Selenium's or
# Playwright's own would be a download from outside the package registries, which these machines cannot reach.
# Idempotent: apt is only asked when a package is missing.
set -euo pipefail

# DejaVu: a font for the text in screenshots, whatever else the machine has.
packages=(chromium chromium-driver fonts-dejavu-core)
bash "$(dirname "$0")/../deploy/install-debian-packages.sh" install-browser "${packages[@]}"
