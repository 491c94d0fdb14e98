#!/usr/bin/env bash
# The engine and the table know nothing of Kubernetes, gRPC or Envoy (DESIGN.md,
# "Data flows one way"). This keeps it so.
set -euo pipefail
bad=0
for pkg in ./internal/cors/... ./internal/table/...; do
  deps=$(go list -deps -f '{{.ImportPath}}' "$pkg")
  if hits=$(grep -E '^(k8s\.io|sigs\.k8s\.io|google\.golang\.org/grpc|github\.com/envoyproxy)' <<<"$deps"); then
    echo "$pkg must not depend on Kubernetes, gRPC or Envoy, but pulls in:"; echo "$hits" | sed 's/^/  /'
    bad=1
  fi
done
exit $bad
