#!/usr/bin/env bash
# `make test-e2e`: the browser end-to-end suite (test/e2e). Chromium, Firefox
# and WebKit make real cross-origin fetch() calls through the Envoy stand-in
# and a corsgate binary, in file mode and against envtest's kube-apiserver.
#
# Checks that the engines it needs are installed (hack/install-browsers.sh
# --check): when one is missing it fails at once, saying what to install and
# how. Only under CI (CI set to anything but "" or "false", as GitHub Actions
# and GitLab set it) does it install them through apt itself; elsewhere
# installing is `make install-browsers`, asked for explicitly.
#
# It runs the suite in its own session, and afterwards fails if any process
# the suite started (corsgate, the browsers and their helpers,
# WebKitWebDriver, Xvfb, etcd, kube-apiserver, kubectl) is still alive:
# cleanup is part of what the suite must get right. The suite starts and
# stops its own Xvfb for WebKit.
#
# Environment: E2E_ENGINES (default chromium,firefox,webkit: run one engine
# with E2E_ENGINES=firefox), KUBEBUILDER_ASSETS (default bin/k8s),
# E2E_ARTIFACTS_DIR (default $TMPDIR/corsgate-e2e-artifacts, emptied first),
# E2E_GO_TEST_FLAGS (default -v), and the browsers' paths (CHROMIUM, FIREFOX,
# CERTUTIL, WEBKIT_DRIVER, MINIBROWSER, XVFB; see hack/install-browsers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export E2E_ENGINES=${E2E_ENGINES:-chromium,firefox,webkit}
case ${CI:-} in
"" | false) hack/install-browsers.sh --check ;;
*) hack/install-browsers.sh ;;
esac
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$PWD/bin/k8s}
export E2E_ARTIFACTS_DIR=${E2E_ARTIFACTS_DIR:-${TMPDIR:-/tmp}/corsgate-e2e-artifacts}
rm -rf "$E2E_ARTIFACTS_DIR"

# setsid from a background job (not a group leader) execs in place: $! is the
# new session's id, and every descendant that does not leave it shares it.
# shellcheck disable=SC2086
(cd test/e2e && exec setsid go test -tags e2e -count=1 -timeout 30m ${E2E_GO_TEST_FLAGS:--v} ./...) &
sid=$!
trap 'kill -TERM -- -"$sid" 2>/dev/null || true' INT TERM
rc=0
wait "$sid" || rc=$?

leftovers() { ps -eo pid=,sid=,args= | awk -v s="$sid" '$2 == s'; }
left=$(leftovers)
# Give exiting processes a moment: they may be mid-exit when go test returns,
# and WebKit's helper processes, re-parented to PID 1 when MiniBrowser exits,
# stay <defunct> until it reaps them. Anything still there after 10 s fails.
for _ in $(seq 20); do
  [ -z "$left" ] && break
  sleep 0.5
  left=$(leftovers)
done
if [ -n "$left" ]; then
  echo "FAIL: the e2e suite left processes running:" >&2
  echo "$left" >&2
  kill -KILL -- -"$sid" 2>/dev/null || true
  rc=1
fi
echo "e2e artifacts: $E2E_ARTIFACTS_DIR"
exit "$rc"
