#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/e2e) when it is not
# there yet. No browser download is possible on the build machines, so the
# browser comes from apt, never from a CDP library's own fetcher.
# CHROMIUM (default /usr/bin/chromium) is the path the tests run.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: $CHROMIUM is missing and apt-get is not available: install Chromium and set CHROMIUM to its path" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-chromium: installing chromium with apt-get (test/e2e drives it headless)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium fonts-liberation
"$CHROMIUM" --version
