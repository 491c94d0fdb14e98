package loadgen

import (
	"fmt"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// Mix is one kind of HTTP request, sent over and over.
type Mix struct {
	Name     string
	Request  envoystandin.Request
	Upstream envoystandin.Upstream
	// RoundTrips is how many ext_proc messages each request costs, with
	// corsgate and with Noop alike (checked by Run through the Sim's stats).
	RoundTrips int
	// Corsgate and Noop are what the client must get back from each server;
	// anything else counts as an error.
	Corsgate, Noop Expect
}

// Expect is a status, and a header that must be present (when Header is set).
type Expect struct {
	Status int
	Header string
}

func (e Expect) check(res *envoystandin.Response) error {
	if res.Status != e.Status {
		return fmt.Errorf("status %d (%s), want %d", res.Status, res.Details, e.Status)
	}
	if e.Header != "" && !res.Headers.Has(e.Header) {
		return fmt.Errorf("no %s header in %v", e.Header, res.Headers)
	}
	return nil
}

// Policies is the policy set the load runs against (a CorsPolicy YAML file
// for `corsgate --policies`): a credentialed API on an exact host, and a
// public wildcard-host policy, as in config/samples.
const Policies = `apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: orders-api
  namespace: bench
spec:
  hosts: ["api.example.test"]
  pathPrefixes: ["/v1"]
  allowOrigins: ["https://app.example.test"]
  allowMethods: ["GET", "PUT", "DELETE"]
  allowHeaders: ["content-type", "x-request-id"]
  exposeHeaders: ["x-trace-id"]
  maxAge: 600
  allowCredentials: true
---
apiVersion: policy.corsgate.io/v1alpha1
kind: CorsPolicy
metadata:
  name: public
  namespace: bench
spec:
  hosts: ["*.example.test"]
  allowOrigins: ["*"]
  allowMethods: ["GET", "POST"]
  maxAge: 3600
`

// browserHeaders are what a browser adds to every request besides the CORS
// ones; Envoy forwards them all to ext_proc, so they are part of the cost.
var browserHeaders = []string{
	"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"accept", "*/*",
	"accept-encoding", "gzip, deflate, br, zstd",
	"accept-language", "en-US,en;q=0.9",
	"sec-fetch-mode", "cors",
	"x-forwarded-for", "203.0.113.7",
}

func headers(cors ...string) envoystandin.Headers {
	return envoystandin.NewHeaders(append(append([]string{}, cors...), browserHeaders...)...)
}

// upstreamResponse is a typical API response, with a stray CORS header of
// the application's own that corsgate removes.
var upstreamResponse = envoystandin.Upstream{Status: 200, Headers: envoystandin.NewHeaders(
	"content-type", "application/json", "vary", "Accept-Encoding", "x-trace-id", "t-1",
	"cache-control", "no-store", "access-control-allow-origin", "*")}

// Mixes are the three kinds of request the load is made of.
var Mixes = []Mix{
	{
		Name: "preflight",
		Request: envoystandin.Request{Method: "OPTIONS", Scheme: "https", Authority: "api.example.test", Path: "/v1/orders/42",
			Headers: headers("origin", "https://app.example.test", "access-control-request-method", "PUT",
				"access-control-request-headers", "content-type,x-request-id")},
		Upstream:   upstreamResponse,
		RoundTrips: 1,
		Corsgate:   Expect{Status: 204, Header: "access-control-allow-origin"},
		Noop:       Expect{Status: 200},
	},
	{
		Name: "actual",
		Request: envoystandin.Request{Method: "GET", Scheme: "https", Authority: "api.example.test", Path: "/v1/orders/42?expand=items",
			Headers: headers("origin", "https://app.example.test", "cookie", "session=abc123")},
		Upstream:   upstreamResponse,
		RoundTrips: 2,
		Corsgate:   Expect{Status: 200, Header: "access-control-allow-credentials"},
		Noop:       Expect{Status: 200},
	},
	{
		Name: "non-cors",
		Request: envoystandin.Request{Method: "GET", Scheme: "https", Authority: "static.example.net", Path: "/assets/app.js",
			Headers: headers()},
		Upstream:   upstreamResponse,
		RoundTrips: 1,
		Corsgate:   Expect{Status: 200},
		Noop:       Expect{Status: 200},
	},
}

// MixNamed returns the mix called name.
func MixNamed(name string) (Mix, error) {
	for _, m := range Mixes {
		if m.Name == name {
			return m, nil
		}
	}
	return Mix{}, fmt.Errorf("no mix %q: use preflight, actual or non-cors", name)
}
