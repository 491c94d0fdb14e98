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
#
# `make install-browsers` runs it. With --check it installs nothing: it fails
# at once, naming the missing binaries, their packages and the command to run
# (hack/e2e.sh checks this way outside CI, so that `make test` never installs
# system packages behind the user's back).
set -euo pipefail

check=false
case ${1:-} in
--check) check=true ;;
"") ;;
*)
  echo "usage: $0 [--check]" >&2
  exit 2
  ;;
esac

engines=${E2E_ENGINES:-chromium,firefox,webkit}
missing=()
absent=()
need() { # need BINARY PACKAGE...: the packages, when BINARY is not there
  local bin=$1
  shift
  if [ ! -x "$bin" ]; then
    absent+=("  $bin (Debian: $*)")
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
packages=$(printf '%s\n' "${missing[@]}" | sort -u | paste -sd' ' -)
if $check; then
  {
    echo "install-browsers: E2E_ENGINES=$engines needs binaries that are missing:"
    printf '%s\n' "${absent[@]}"
    echo "Install them (apt-get, as root or through sudo) with:"
    echo "  E2E_ENGINES=$engines make install-browsers    # or: sudo apt-get install $packages"
    echo "or run fewer engines, e.g.:"
    echo "  E2E_ENGINES=chromium make test-e2e"
    echo "(make test installs them itself only under CI, when CI is set and not 'false'.)"
  } >&2
  exit 1
fi
echo "install-browsers: installing $packages for:"
printf '%s\n' "${absent[@]}"
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
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $packages
