package cors_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/cors"
)

// BenchmarkDecide measures the decision alone; dimensions are named in the
// sub-benchmark (cfg=…/req=…) for benchstat.
func BenchmarkDecide(b *testing.B) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("https://app%d.example.com", i)
	}
	cfgs := []struct {
		name string
		cfg  cors.Config
	}{
		{"one", cors.Config{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"PUT"}, AllowHeaders: []string{"x-foo"}, AllowCredentials: true}},
		{"wildcard", cors.Config{AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"PUT"}, AllowHeaders: []string{"x-foo"}}},
		{"many", cors.Config{AllowOrigins: append(many, "https://app.example.com"), AllowMethods: []string{"PUT"}, AllowHeaders: []string{"x-foo"}}},
		{"all", cors.Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}},
	}
	reqs := []struct {
		name string
		req  cors.Request
	}{
		{"actual-allowed", actual("GET", "https://app.example.com")},
		{"actual-denied", actual("GET", "https://evil.example")},
		{"preflight-allowed", preflight("https://app.example.com", "PUT", "x-foo")},
		{"preflight-denied", preflight("https://evil.example", "PUT", "x-foo")},
		{"preflight-evil-acrh", preflight("https://app.example.com", "PUT", strings.Repeat(",", 1<<20))},
	}
	for _, c := range cfgs {
		p := mustCompile(b, c.cfg)
		for _, r := range reqs {
			b.Run("cfg="+c.name+"/req="+r.name, func(b *testing.B) {
				b.ReportAllocs()
				req := r.req
				for b.Loop() {
					_ = p.Decide(&req)
				}
			})
		}
	}
}

// BenchmarkCrossOriginProtection is the decision with cross-origin protection
// on (cop=on) beside the same policy without it (cop=off), for the requests the
// check reads: a refused cross-site POST, a trusted one, and a same-origin
// one decided by Origin and Host alone.
func BenchmarkCrossOriginProtection(b *testing.B) {
	reqs := []struct {
		name string
		req  cors.Request
	}{
		{"cross-site-untrusted", req("POST", "api.example.com", "https://evil.example", "cross-site")},
		{"cross-site-trusted", req("POST", "api.example.com", "https://app.example.com", "cross-site")},
		{"same-origin-by-host", req("POST", "api.example.com", "https://api.example.com", "")},
	}
	for _, mode := range []struct {
		name string
		m    cors.CrossOriginMode
	}{{"off", cors.CrossOriginOff}, {"on", cors.CrossOriginEnforce}} {
		p := mustCompile(b, withCOP(protected, mode.m))
		for _, r := range reqs {
			b.Run("cop="+mode.name+"/req="+r.name, func(b *testing.B) {
				b.ReportAllocs()
				req := r.req
				for b.Loop() {
					_ = p.Decide(&req)
				}
			})
		}
	}
}
