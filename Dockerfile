# syntax=docker/dockerfile:1
#
# corsgate's container image: `make docker-build IMG=...`.

# Build stage. The Go version must satisfy go.mod's `go` line; GOTOOLCHAIN=local
# makes a mismatch fail here instead of downloading another toolchain.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src

# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

# Then the sources (.dockerignore keeps out bin/, charts, docs, tests' data...).
COPY . .
# -trimpath: no build-machine paths in the binary; -s -w: no symbol tables.
# CGO_ENABLED=0 gives a static binary that needs no libc in the runtime image.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/corsgate ./cmd/corsgate

# Runtime stage: distroless "static" has CA certificates, tzdata and
# /etc/passwd, and nothing else: no shell, no package manager. The nonroot
# variant runs as UID/GID 65532, which the Helm chart's securityContext also
# states. Pin it by digest for releases.
FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=builder /out/corsgate /corsgate
USER 65532:65532
# gRPC (ext_proc), metrics, health probes.
EXPOSE 9002 8080 8081
ENTRYPOINT ["/corsgate"]
