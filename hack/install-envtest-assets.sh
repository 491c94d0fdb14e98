#!/usr/bin/env bash
# Builds envtest's control plane (etcd, kube-apiserver) and a matching kubectl from
# the Go module proxy, because setup-envtest's release downloads cannot be reached
# here. docs/development.md says where each version comes from and how to bump it.
#
# Usage: hack/install-envtest-assets.sh [DEST]   (default: bin/k8s)
# A no-op when DEST already holds binaries built for the pinned versions.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.1}   # v1.37.2's zip is refused by the proxy
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
DEST=${1:-bin/k8s}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
STAMP="$DEST/.versions"
WANT="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION"

if [[ -x $DEST/etcd && -x $DEST/kube-apiserver && -x $DEST/kubectl && -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
  exit 0
fi

export GOWORK=off GOFLAGS=-modcacherw CGO_ENABLED=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "envtest assets: building etcd $ETCD_VERSION into $DEST" >&2
mkdir -p "$work/etcd" && cd "$work/etcd"
go mod init envtest-etcd-builder >/dev/null 2>&1
go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
go build -trimpath -ldflags "-s -w" -o "$DEST/etcd" go.etcd.io/etcd/server/v3

echo "envtest assets: building kube-apiserver and kubectl $K8S_VERSION (several minutes when cold)" >&2
staging=v0${K8S_VERSION#v1}   # v1.37.1 -> v0.37.1
mkdir -p "$work/k8s"
# Read the tag's go.mod from outside the builder module, which is being written.
upstream_gomod=$(cd "$work" && go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$K8S_VERSION")
cd "$work/k8s"
{
  echo "module envtest-apiserver-builder"
  echo
  echo "go 1.26"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  # Every staging repo that k8s.io/kubernetes requires at v0.0.0 maps to its published tag.
  awk '/^[[:space:]]*k8s.io\/[a-z0-9-]+ v0\.0\.0([[:space:]]|$)/ {print "\t" $1 " => " $1 " '"$staging"'"}' "$upstream_gomod" | sort -u
  echo ")"
} >go.mod
go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" 2>&1 | grep -v "^go: downloading" >&2 || true
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
go build -trimpath -ldflags "$ldflags" -o "$DEST/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$DEST/kubectl" k8s.io/kubernetes/cmd/kubectl

echo "$WANT" >"$STAMP"
"$DEST/kube-apiserver" --version >&2
