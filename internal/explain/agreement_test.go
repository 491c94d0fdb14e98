package explain_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/extproc"
	"github.com/corsgate/corsgate/internal/compile"
	"github.com/corsgate/corsgate/internal/cors"
	"github.com/corsgate/corsgate/internal/explain"
	"github.com/corsgate/corsgate/internal/filesource"
	"github.com/corsgate/corsgate/internal/table"
	"github.com/corsgate/corsgate/test/envoystandin"
	"github.com/corsgate/corsgate/test/gen"
)

// decideCase is an entry of the engine's decision table, exported by
// internal/cors (TestDecideCasesExported keeps the file equal to the table).
type decideCase struct {
	Desc    string       `json:"desc"`
	Config  cors.Config  `json:"config"`
	Request cors.Request `json:"request"`
	Kind    string       `json:"kind"`
	Allowed bool         `json:"allowed"`
	Reason  string       `json:"reason"`
}

func loadDecideCases(t *testing.T) []decideCase {
	t.Helper()
	data, err := os.ReadFile("../cors/testdata/decide_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []decideCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d decision cases read: the export is broken", len(cases))
	}
	return cases
}

// specOf writes cfg as a CorsPolicy spec, and checks that the compile path
// reads it back as cfg: a Config field this function does not know fails the
// test instead of being silently dropped.
func specOf(t *testing.T, desc string, cfg cors.Config) v1alpha1.CorsPolicySpec {
	t.Helper()
	s := v1alpha1.CorsPolicySpec{
		AllowOrigins: cfg.AllowOrigins, AllowOriginRegexes: cfg.AllowOriginRegexes,
		AllowMethods: cfg.AllowMethods, AllowHeaders: cfg.AllowHeaders, ExposeHeaders: cfg.ExposeHeaders,
		MaxAge: cfg.MaxAge, AllowCredentials: cfg.AllowCredentials, AllowPrivateNetwork: cfg.AllowPrivateNetwork,
	}
	if cfg.UnmatchedPreflight == cors.PreflightForward {
		s.UnmatchedPreflight = v1alpha1.UnmatchedPreflightForward
	}
	if cfg.Mode == cors.ModeDryRun {
		s.Mode = v1alpha1.ModeDryRun
	}
	switch cfg.CrossOriginProtection {
	case cors.CrossOriginEnforce:
		s.CrossOriginProtection = &v1alpha1.CrossOriginProtection{Mode: v1alpha1.CrossOriginProtectionEnforce}
	case cors.CrossOriginDryRun:
		s.CrossOriginProtection = &v1alpha1.CrossOriginProtection{Mode: v1alpha1.CrossOriginProtectionDryRun}
	}
	if back := compile.Config(&s); !reflect.DeepEqual(back, cfg) {
		t.Fatalf("%s: the case's config does not survive the CorsPolicy spec:\n got %+v\nwant %+v\n(teach specOf the new field)", desc, back, cfg)
	}
	return s
}

// crossOriginCases add cross-origin protection, whose refusals are actual
// requests answered 403 at the edge, to the decision table's cases. The
// request's host is the policy's (each case gets its own), so that an
// Origin on "the same host" cannot be written here: those cases stay in
// internal/cors.
var crossOriginCases = func() []decideCase {
	protected := cors.Config{
		AllowOrigins:          []string{"https://app.example.com"},
		AllowMethods:          []string{"PUT"},
		AllowCredentials:      true,
		CrossOriginProtection: cors.CrossOriginEnforce,
	}
	dry := protected
	dry.CrossOriginProtection = cors.CrossOriginDryRun
	post := func(origin, site string) cors.Request {
		return cors.Request{Method: "POST", Origin: origin, HasOrigin: origin != "", SecFetchSite: site}
	}
	return []decideCase{
		{Desc: "cross-origin protection refuses an untrusted cross-site POST at the edge", Config: protected, Request: post("https://evil.example", "cross-site"), Kind: "actual", Reason: "cross_origin_refused"},
		{Desc: "cross-origin protection lets a trusted origin through", Config: protected, Request: post("https://app.example.com", "cross-site"), Kind: "actual", Allowed: true, Reason: "allowed"},
		{Desc: "cross-origin protection never refuses GET", Config: protected, Request: cors.Request{Method: "GET", Origin: "https://evil.example", HasOrigin: true, SecFetchSite: "cross-site"}, Kind: "actual", Reason: "origin_not_allowed"},
		{Desc: "cross-origin protection in DryRun lets the refused request through", Config: dry, Request: post("https://evil.example", "cross-site"), Kind: "actual", Reason: "cross_origin_dry_run"},
	}
}()

// upstream is an application that sets its own, wrong, CORS headers, so that
// the edge's removals and its Vary merge show.
var upstream = envoystandin.NewHeaders(
	"content-type", "application/json",
	"access-control-allow-origin", "*",
	"vary", "Accept-Encoding",
	"x-trace-id", "t-1",
)

func serve(t *testing.T, tbl *table.Table) *grpc.ClientConn {
	t.Helper()
	var store table.Store
	store.Swap(tbl)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runner := &extproc.Runner{Server: extproc.NewServer(&store), Listener: lis}
	done := make(chan error, 1)
	go func() { done <- runner.Start(ctx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return conn
}

func corsView(h envoystandin.Headers) map[string]string {
	var m map[string]string
	for _, e := range h {
		n := strings.ToLower(e.Name)
		if strings.HasPrefix(n, "access-control-") || n == "vary" {
			if m == nil {
				m = map[string]string{}
			}
			if prev, ok := m[n]; ok {
				m[n] = prev + ", " + e.Value
				continue
			}
			m[n] = e.Value
		}
	}
	return m
}

// TestExplainAgreesWithServer plays every case of the engine's decision
// table, in Enforce and in DryRun, through `explain` and through the ext_proc
// server over real gRPC behind the Envoy stand-in, and compares what the
// browser receives: status, CORS headers, details, and whether the upstream
// was reached.
func TestExplainAgreesWithServer(t *testing.T) {
	cases := append(loadDecideCases(t), crossOriginCases...)
	type played struct {
		desc string
		host string
		req  cors.Request
		want decideCase
	}
	var objs []filesource.Object
	var plays []played
	for i, tc := range cases {
		for _, mode := range []cors.Mode{cors.ModeEnforce, cors.ModeDryRun} {
			cfg := tc.Config
			cfg.Mode = mode
			host := fmt.Sprintf("case-%d-%d.example.test", i, mode)
			spec := specOf(t, tc.Desc, cfg)
			spec.Hosts = []string{host}
			p := gen.CorsPolicy(fmt.Sprintf("case-%d-%d", i, mode), gen.WithSpec(spec))
			objs = append(objs, filesource.Object{File: "cases.yaml", Policy: *p})
			plays = append(plays, played{desc: fmt.Sprintf("%s (mode %d)", tc.Desc, mode), host: host, req: tc.Request, want: tc})
		}
	}
	policies := make([]v1alpha1.CorsPolicy, len(objs))
	for i := range objs {
		policies[i] = objs[i].Policy
	}
	tbl, results := compile.NewBuilder().Build(policies)
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s does not compile: %v", r.Key(), r.Err)
		}
	}
	sim := envoystandin.New(serve(t, tbl), envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true,
		MessageTimeout:    durationpb.New(time.Minute), // nothing here asserts on time
	}})

	for _, pl := range plays {
		t.Run(pl.desc, func(t *testing.T) {
			method := pl.req.Method
			var hs envoystandin.Headers
			var lines []string
			add := func(name, value string) {
				hs = append(hs, envoystandin.Header{Name: name, Value: value})
				lines = append(lines, name+": "+value)
			}
			if pl.req.HasOrigin {
				add("origin", pl.req.Origin)
			}
			if v := pl.req.AccessControlRequestMethod; v != "" {
				add("access-control-request-method", v)
			}
			if v := pl.req.AccessControlRequestHeaders; v != "" {
				// explain reads -H as an HTTP parser does, without
				// surrounding whitespace: send the server the same.
				add("access-control-request-headers", strings.Trim(v, " \t"))
			}
			if v := pl.req.AccessControlRequestPrivateNetwork; v != "" {
				add("access-control-request-private-network", v)
			}
			if v := pl.req.SecFetchSite; v != "" {
				add("sec-fetch-site", v)
			}
			var upLines []string
			for _, h := range upstream {
				upLines = append(upLines, h.Name+": "+h.Value)
			}

			got, err := sim.Do(context.Background(),
				envoystandin.Request{Method: method, Scheme: "https", Authority: pl.host, Path: "/orders?page=1", Headers: hs},
				envoystandin.Upstream{Status: 200, Headers: upstream, Body: []byte("{}")})
			if err != nil {
				t.Fatal(err)
			}
			res, err := explain.Explain(objs, explain.Request{Method: method, URL: "https://" + pl.host + "/orders?page=1", Headers: lines, Upstream: upLines})
			if err != nil {
				t.Fatal(err)
			}

			if res.Policy == nil || !strings.HasSuffix(*res.Policy, "/case-"+strings.TrimSuffix(strings.TrimPrefix(pl.host, "case-"), ".example.test")) {
				t.Fatalf("explain names policy %v for host %s", res.Policy, pl.host)
			}
			if res.Upstream != got.UpstreamReached {
				t.Errorf("upstream reached: explain says %v, server %v", res.Upstream, got.UpstreamReached)
			}
			wantStatus := 200
			wantCORS := res.Response
			if !res.Upstream {
				wantStatus, wantCORS = res.Status, res.Headers
				if res.Details != got.Details {
					t.Errorf("details: explain %q, server %q", res.Details, got.Details)
				}
			}
			if got.Status != wantStatus {
				t.Errorf("status: explain %d, server %d", wantStatus, got.Status)
			}
			if gotCORS := corsView(got.Headers); !maps.Equal(gotCORS, wantCORS) && !(len(gotCORS) == 0 && len(wantCORS) == 0) {
				t.Errorf("CORS headers:\nserver  %v\nexplain %v", gotCORS, wantCORS)
			}
			// And explain reads the decision as the table says.
			if res.Kind != pl.want.Kind || res.Reason != pl.want.Reason {
				t.Errorf("explain: kind %s reason %s; the decision table says kind %s reason %s", res.Kind, res.Reason, pl.want.Kind, pl.want.Reason)
			}
			if pl.want.Reason == "cross_origin_refused" && strings.Contains(pl.desc, "mode 0") && (res.Outcome != cors.OutcomeRefused.String() || res.Status != 403) {
				t.Errorf("cross-origin refusal: outcome %s status %d, want refused 403", res.Outcome, res.Status)
			}
			if strings.Contains(pl.desc, "mode 1") && res.Outcome != cors.OutcomeForwarded.String() {
				t.Errorf("DryRun outcome %s, want forwarded", res.Outcome)
			}
		})
	}
}
