#!/usr/bin/env bash
# Installs Debian's browser engines for the browser tests (test/e2e), those
# of E2E_ENGINES (default chromium,firefox,webkit) that are missing. No
# browser download is possible on the build machines, so every engine comes
# from apt, never from a driver library's own fetcher:
#
#   chromium  chromium, fonts-liberation          (/usr/bin/chromium, driven over CDP)
#   firefox   firefox-esr, libnss3-tools          (/usr/bin/firefox-esr, driven over its own
#                                                  WebDriver BiDi; certutil trusts the test CA)
#   webkit    webkit2gtk-driver, xvfb             (/usr/bin/WebKitWebDriver and WebKitGTK's
#                                                  MiniBrowser, on the suite's own Xvfb)
#
# CHROMIUM, FIREFOX, CERTUTIL, WEBKIT_DRIVER, MINIBROWSER and XVFB name the
# binaries the tests run, as in test/e2e.
set -euo pipefail

engines=${E2E_ENGINES:-chromium,firefox,webkit}
missing=()
need() { # need BINARY PACKAGE...: the packages, when BINARY is not there
  local bin=$1
  shift
  if [ ! -x "$bin" ]; then
    echo "install-browsers: $bin is missing: installing $*"
    missing+=("$@")
  fi
}
IFS=, read -ra list <<<"$engines"
for e in "${list[@]}"; do
  case $e in
  chromium)
    need "${CHROMIUM:-/usr/bin/chromium}" chromium fonts-liberation
    ;;
  firefox)
    need "${FIREFOX:-/usr/bin/firefox-esr}" firefox-esr
    need "${CERTUTIL:-/usr/bin/certutil}" libnss3-tools
    ;;
  webkit)
    need "${WEBKIT_DRIVER:-/usr/bin/WebKitWebDriver}" webkit2gtk-driver
    need "${MINIBROWSER:-/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser}" webkit2gtk-driver
    need "${XVFB:-/usr/bin/Xvfb}" xvfb
    ;;
  *)
    echo "install-browsers: E2E_ENGINES names '$e'; the engines are chromium, firefox and webkit" >&2
    exit 1
    ;;
  esac
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browsers: apt-get is not available: install ${missing[*]} (or set the variables above to the binaries)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
# A package that is missing is usually missing from a stale package list.
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $(printf '%s\n' "${missing[@]}" | sort -u)
