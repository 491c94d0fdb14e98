// Package e2e holds corsgate's browser end-to-end suite: Chromium, Firefox
// and WebKit make real cross-origin fetch() calls from pages on https://*.example.test
// through the Envoy stand-in front proxy (test/envoystandin), which asks a
// corsgate binary over real gRPC, to an upstream app that behaves as real apps
// do. The browser is the judge: every scenario asserts what the page's
// JavaScript could or could not read, and what reached the upstream.
//
// The tests carry the build tag e2e, so `go test ./...` does not run them.
// Every scenario runs in each engine of E2E_ENGINES (default
// chromium,firefox,webkit), one engine after the other: Chromium over CDP
// (chromedp), Firefox over WebDriver BiDi (its own remote agent, no
// geckodriver; internal/bidi), WebKit over W3C WebDriver (WebKitWebDriver
// and MiniBrowser on the suite's own Xvfb; internal/webdriver). One CONNECT
// proxy maps the suite's names for all three. hack/e2e.sh (make test-e2e)
// installs the engines through apt when they are missing, runs the suite,
// and fails if any process it started outlives it:
//
//	make envtest-assets           # kube-apiserver, etcd, kubectl for the Kubernetes group
//	hack/e2e.sh                   # or: go test -tags e2e -count=1 -v ./test/e2e/...
//
// Without an engine it was asked for, the suite fails (it never skips) and
// says to run hack/install-browsers.sh. Screenshots, the browsers' consoles,
// the logs of corsgate, the edge and the browsers, and words.tsv (each
// browser's console text beside explain's for every failure) are kept in
// E2E_ARTIFACTS_DIR (hack/e2e.sh: $TMPDIR/corsgate-e2e-artifacts; plain go
// test: a new corsgate-e2e-artifacts-* directory under $TMPDIR, printed at
// the end). E2E_DEBUG_EVENTS=1 prints every CDP and BiDi event; CHROMIUM,
// FIREFOX, CERTUTIL, WEBKIT_DRIVER, MINIBROWSER, XVFB, CORSGATE_BIN and
// KUBEBUILDER_ASSETS override the browsers, the corsgate binary (built by
// TestMain otherwise) and the envtest binaries.
//
// TestFileMode runs corsgate with --policies (file mode, policy edits by
// rewriting a file); TestKubernetesMode runs it against a real kube-apiserver
// and etcd (envtest) with policies applied by kubectl. The one part that is
// not the real thing is the front proxy: no Envoy binary runs here, so
// envoystandin plays Envoy's ext_proc filter (see its package comment).
package e2e
