# corsgate — kubebuilder's target names; every tool is pinned here and built
# from the Go module proxy into bin/. The browser tests also need Debian's
# browser engines: `make install-browsers` installs them (under CI, `make
# test` does it itself); docs/development.md says what a machine needs.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

LOCALBIN ?= $(CURDIR)/bin
export PATH := $(LOCALBIN):$(PATH)
export GOFLAGS := -modcacherw

## Tool versions (bump here, nowhere else; why each is pinned where it is:
## docs/development.md).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
# promtool checks and unit-tests the chart's PrometheusRule (test/deploy).
PROMETHEUS_VERSION ?= v0.316.0

# envtest's kube-apiserver, kubectl and etcd, built from source into bin/k8s.
K8S_VERSION ?= v1.37.1
ETCD_VERSION ?= v3.7.3

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
HELM ?= $(LOCALBIN)/helm
KUSTOMIZE ?= $(LOCALBIN)/kustomize
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
PROMTOOL ?= $(LOCALBIN)/promtool
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)

IMG ?= ghcr.io/corsgate/corsgate:dev
FUZZTIME ?= 10s

# The modules: the product (.), and two of tooling whose dependencies the
# product must not carry (bench: rs/cors, jub0bs/cors; test/e2e: chromedp, gorilla/websocket).
MODULES := . bench test/e2e
# Test tiers by package: unit tests need nothing but Go; envtest tests start a
# real kube-apiserver and etcd (bin/k8s), and the binary tests build corsgate.
UNIT_PKGS := ./internal/... ./extproc/... ./test/envoystandin/... ./test/gen/... ./hack/...
ENVTEST_PKGS := ./api/... ./controllers/... ./cmd/... ./test/deploy/... ./test/devproxy/...

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC from the API markers, and the chart's values.schema.json from its commented values.yaml.
	$(CONTROLLER_GEN) rbac:roleName=corsgate crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@if [ -d charts/corsgate/crds ]; then cp config/crd/bases/*.yaml charts/corsgate/crds/; fi
	go run ./hack/values-schema -values charts/corsgate/values.yaml -out charts/corsgate/values.schema.json

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, every module.
	@for m in $(MODULES); do (cd $$m && go vet -tags e2e ./...) || exit 1; done

.PHONY: lint
lint: golangci-lint ## golangci-lint (.golangci.yml: the linters, gofmt/goimports, and the import table as depguard rules), every module.
	@for m in $(MODULES); do echo "golangci-lint $$m"; (cd $$m && $(GOLANGCI_LINT) run --build-tags e2e --config $(CURDIR)/.golangci.yml ./...) || exit 1; done

.PHONY: verify
verify: manifests generate ## Fail when generated files (CRD, RBAC, deepcopy, the chart's CRD copy and values.schema.json) or go.mod/go.sum are stale.
	@if [ -n "$$(git status --porcelain -- api config charts)" ]; then \
		echo "generated files are stale; run 'make manifests generate' and commit:"; git status --porcelain -- api config charts; \
		git diff --stat -- api config charts; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum are not tidy; run 'go mod tidy' in $$m and commit"; exit 1; }; done

.PHONY: test
test: manifests generate vet ## Every tier: unit (with -race), envtest and binary, browser, and a short fuzz pass.
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-envtest
	$(MAKE) --no-print-directory test-e2e
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

.PHONY: test-unit
test-unit: ## Engine, table, compile, file source, ext_proc, the Envoy stand-in, and the bench module's checks; once with -race.
	go test -race -count=1 $(UNIT_PKGS)
	cd bench && go test -count=1 ./...

.PHONY: test-envtest
test-envtest: envtest-assets helm kustomize promtool ## CRD rules, controllers, the binary in both modes, chart and deployment YAML: real kube-apiserver + etcd.
	go test -count=1 $(ENVTEST_PKGS)

.PHONY: test-e2e
test-e2e: envtest-assets ## Browser end-to-end tests in Chromium, Firefox and WebKit (E2E_ENGINES=firefox for one) through corsgate, file and Kubernetes modes. A missing engine fails at once; only under CI (CI=true) is it apt-installed.
	hack/e2e.sh

.PHONY: install-browsers
install-browsers: ## apt-install the browser engines of E2E_ENGINES (default all three) that are missing; sudo when not root.
	hack/install-browsers.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (a short seed-and-explore pass in `make test`).
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v -e '^./bin/' -e '^./bench/' -e '^./test/e2e/' | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "fuzz $$dir $$f ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
		done; \
	done

BENCH_SOAK ?= 5m

.PHONY: bench
bench: envtest-assets ## corsgate side by side with rs/cors, jub0bs/cors, a stock no-op ext_proc server and one with corsgate's codec work; scale; reconcile-to-serve. Prints a summary table (~35 min; BENCH_FIXED_DURATION=5s for ~15).
	hack/bench.sh all

.PHONY: soak
soak: ## corsgate at steady load for BENCH_SOAK (default 5m): heap and goroutines must stay flat.
	BENCH_SOAK=$(BENCH_SOAK) hack/bench.sh soak

##@ Build

# What `corsgate version` prints: the git description and commit of the tree
# built (main.version and main.commit; see cmd/corsgate/tools.go).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)

.PHONY: build
build: manifests generate ## Build bin/corsgate and the Envoy stand-in front proxy.
	go build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(LOCALBIN)/corsgate ./cmd/corsgate
	go build -o $(LOCALBIN)/devproxy ./test/devproxy

.PHONY: run
run: build ## corsgate on config/samples, behind the Envoy stand-in front proxy (no cluster needed).
	hack/run-local.sh

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: helm
helm: $(HELM)
# Release ldflags: without them helm reports Kubernetes v1.20 as its KubeVersion.
$(HELM): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: promtool
promtool: $(PROMTOOL)
# Prometheus's Go module versions are v0.x (v3.y.z is v0.3yy.z).
# remove_all_sd leaves out the service-discovery plugins (cloud SDKs), which
# checking and testing rules never uses: most of the build.
$(PROMTOOL): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

.PHONY: envtest-assets
envtest-assets: ## Build etcd, kube-apiserver and kubectl for envtest into bin/k8s (once).
	K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/install-envtest-assets.sh $(ENVTEST_ASSETS)

$(LOCALBIN):
	mkdir -p $(LOCALBIN)
