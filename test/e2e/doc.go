// Package e2e holds corsgate's browser end-to-end suite: headless Chromium
// makes real cross-origin fetch() calls from pages on https://*.example.test
// through the Envoy stand-in front proxy (test/envoystandin), which asks a
// corsgate binary over real gRPC, to an upstream app that behaves as real apps
// do. The browser is the judge: every scenario asserts what the page's
// JavaScript could or could not read, and what reached the upstream.
//
// The tests carry the build tag e2e, so `go test ./...` does not run them.
// hack/e2e.sh (make test-e2e) installs Chromium through apt when it is
// missing, runs them, and fails if any process they started outlives them:
//
//	make envtest-assets           # kube-apiserver, etcd, kubectl for the Kubernetes group
//	hack/e2e.sh                   # or: go test -tags e2e -count=1 -v ./test/e2e/...
//
// Without Chromium the suite fails (it never skips) and says to run
// hack/install-chromium.sh. Screenshots, the browser's console, and the logs
// of corsgate, the edge and Chromium are kept in E2E_ARTIFACTS_DIR (hack/e2e.sh:
// $TMPDIR/corsgate-e2e-artifacts; plain go test: a new corsgate-e2e-artifacts-*
// directory under $TMPDIR, printed at the end). E2E_DEBUG_CDP=1 prints every
// CDP event; CHROMIUM, CORSGATE_BIN and KUBEBUILDER_ASSETS override the
// browser, the corsgate binary (built by TestMain otherwise) and the envtest
// binaries.
//
// TestFileMode runs corsgate with --policies (file mode, policy edits by
// rewriting a file); TestKubernetesMode runs it against a real kube-apiserver
// and etcd (envtest) with policies applied by kubectl. The one part that is
// not the real thing is the front proxy: no Envoy binary runs here, so
// envoystandin plays Envoy's ext_proc filter (see its package comment).
package e2e
