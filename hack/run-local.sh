#!/usr/bin/env bash
# `make run`: corsgate on config/samples (file mode, no cluster), behind
# devproxy, the Envoy stand-in front proxy, which forwards to a built-in demo
# upstream. devproxy is NOT Envoy: it plays Envoy's ext_proc filter faithfully
# enough to try corsgate out; in production, Envoy (examples/envoy) calls
# corsgate the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC=${GRPC:-127.0.0.1:9002}
PROXY=${PROXY:-127.0.0.1:8000}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

bin/corsgate --policies config/samples --grpc-bind-address "$GRPC" \
  --metrics-bind-address 127.0.0.1:8080 --health-probe-bind-address 127.0.0.1:8081 &
pids+=($!)
for _ in $(seq 100); do curl -fs 127.0.0.1:8081/readyz >/dev/null 2>&1 && break; sleep 0.1; done
bin/devproxy --listen "$PROXY" --extproc "$GRPC" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://$PROXY/" 2>/dev/null && break; sleep 0.1; done

cat <<MSG

corsgate is serving config/samples on $GRPC (ext_proc), metrics on 127.0.0.1:8080/metrics.
devproxy (the Envoy stand-in) listens on http://$PROXY. Try:

# 1. A preflight answered at the edge (204; the upstream never sees it):
curl -si -X OPTIONS http://$PROXY/v1/orders -H 'Host: api.example.test' \\
  -H 'Origin: https://app.example.test' -H 'Access-Control-Request-Method: PUT' \\
  -H 'Access-Control-Request-Headers: content-type,x-request-id'

# 2. The same preflight from an origin the policy does not allow (403, no CORS headers):
curl -si -X OPTIONS http://$PROXY/v1/orders -H 'Host: api.example.test' \\
  -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: PUT'

# 3. An actual request: the upstream answers, the edge sets the CORS headers:
curl -si http://$PROXY/v1/orders -H 'Host: api.example.test' -H 'Origin: https://app.example.test'

Edit a file in config/samples and corsgate reloads it. Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
