#!/usr/bin/env bash
# `make test-e2e`: the browser end-to-end suite (test/e2e). Headless Chromium
# makes real cross-origin fetch() calls through the Envoy stand-in and a
# corsgate binary, in file mode and against envtest's kube-apiserver.
#
# Installs Chromium through apt when it is missing, runs the suite in its own
# session, and afterwards fails if any process the suite started (corsgate,
# chromium, etcd, kube-apiserver, kubectl) is still alive: cleanup is part of
# what the suite must get right.
#
# Environment: KUBEBUILDER_ASSETS (default bin/k8s), E2E_ARTIFACTS_DIR
# (default $TMPDIR/corsgate-e2e-artifacts, emptied first), E2E_GO_TEST_FLAGS
# (default -v), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-chromium.sh
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$PWD/bin/k8s}
export E2E_ARTIFACTS_DIR=${E2E_ARTIFACTS_DIR:-${TMPDIR:-/tmp}/corsgate-e2e-artifacts}
rm -rf "$E2E_ARTIFACTS_DIR"

# setsid from a background job (not a group leader) execs in place: $! is the
# new session's id, and every descendant that does not leave it shares it.
# shellcheck disable=SC2086
(cd test/e2e && exec setsid go test -tags e2e -count=1 -timeout 20m ${E2E_GO_TEST_FLAGS:--v} ./...) &
sid=$!
trap 'kill -TERM -- -"$sid" 2>/dev/null || true' INT TERM
rc=0
wait "$sid" || rc=$?

leftovers() { ps -eo pid=,sid=,args= | awk -v s="$sid" '$2 == s'; }
left=$(leftovers)
if [ -n "$left" ]; then
  # Give exiting processes a moment (they may be mid-exit when go test returns).
  sleep 2
  left=$(leftovers)
fi
if [ -n "$left" ]; then
  echo "FAIL: the e2e suite left processes running:" >&2
  echo "$left" >&2
  kill -KILL -- -"$sid" 2>/dev/null || true
  rc=1
fi
echo "e2e artifacts: $E2E_ARTIFACTS_DIR"
exit "$rc"
