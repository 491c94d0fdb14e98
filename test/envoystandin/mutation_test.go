//lint:file-ignore SA1019 Envoy's ext_proc reads only the deprecated append field (docs/envoy.md#append-versus-overwrite): the tests set it as Envoy expects.

package envoystandin_test

import (
	"fmt"
	"slices"
	"testing"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// docs/envoy.md#header-mutations, docs/envoy.md#what-the-stand-in-reproduces item 9: response-phase mutations on an upstream response.
func TestResponseHeaderMutation(t *testing.T) {
	t.Parallel()
	upstreamHeaders := envoystandin.NewHeaders(
		"Vary", "Accept-Encoding",
		"Set-Cookie", "a=1",
		"X-Custom", "up",
		"Access-Control-Allow-Origin", "*",
		"Content-Type", "application/json",
	)
	tests := []struct {
		desc         string
		mutation     *extprocv3.HeaderMutation
		wantStatus   int
		wantDetails  string
		want         []string // the final header list, name value pairs
		wantRejected uint64
	}{
		{
			desc:     "append on an inline name (vary) joins with a comma, no space",
			mutation: sets(set("vary", "Origin", true)),
			want: []string{"vary", "Accept-Encoding,Origin", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json"},
		},
		{
			desc:     "append false overwrites (and the header moves to the end)",
			mutation: sets(set("vary", "Origin", false)),
			want: []string{"set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json", "vary", "Origin"},
		},
		{
			desc: "append unset means overwrite; append_action is ignored",
			mutation: sets(&corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: "vary", RawValue: []byte("Origin")},
				AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
			}),
			want: []string{"set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json", "vary", "Origin"},
		},
		{
			desc:     "append on a non-inline name adds a second entry",
			mutation: sets(set("set-cookie", "b=2", true), set("x-custom", "ext", true)),
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json", "set-cookie", "b=2", "x-custom", "ext"},
		},
		{
			desc: "remove runs before set, whatever the order in the message",
			mutation: &extprocv3.HeaderMutation{
				SetHeaders:    []*corev3.HeaderValueOption{set("access-control-allow-origin", "https://app.example", false)},
				RemoveHeaders: []string{"access-control-allow-origin", "X-Custom"},
			},
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "content-type", "application/json",
				"access-control-allow-origin", "https://app.example"},
		},
		{
			desc:     "names are lower-cased; entries apply in order",
			mutation: sets(set("Access-Control-Allow-Origin", "https://a.example", false), set("ACCESS-CONTROL-ALLOW-ORIGIN", "https://b.example", true)),
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up", "content-type", "application/json",
				"access-control-allow-origin", "https://a.example,https://b.example"},
		},
		{
			desc: "value only: an empty header (issue #31555)",
			mutation: sets(&corev3.HeaderValueOption{
				Header: &corev3.HeaderValue{Key: "x-value-only", Value: "lost"}, Append: wrapperspb.Bool(false),
			}),
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json", "x-value-only", ""},
		},
		{
			desc: "value and raw_value both set: 500",
			mutation: sets(&corev3.HeaderValueOption{
				Header: &corev3.HeaderValue{Key: "x-both", Value: "a", RawValue: []byte("a")}, Append: wrapperspb.Bool(false),
			}),
			wantStatus:   500,
			wantDetails:  "Only_one_of_value_or_raw_value_in_the_HeaderValue_message_should_be_set.",
			want:         []string{},
			wantRejected: 1,
		},
		{
			desc:         "invalid header name: 500",
			mutation:     sets(set("bad name", "v", false)),
			wantStatus:   500,
			wantDetails:  "Invalid_character_in_set_headers_mutation.",
			want:         []string{},
			wantRejected: 1,
		},
		{
			desc:         "invalid name in remove_headers: 500",
			mutation:     &extprocv3.HeaderMutation{RemoveHeaders: []string{"bad\rname"}},
			wantStatus:   500,
			wantDetails:  "Invalid_character_in_remove_headers_mutation.",
			want:         []string{},
			wantRejected: 1,
		},
		{
			desc:         "more set_headers than max_headers_count: 500",
			mutation:     sets(manySets(101)...),
			wantStatus:   500,
			wantDetails:  "Header_mutation_remove_header_count_0_or_set_header_count_101_exceed_the_HCM_header_countlimit_100",
			want:         []string{},
			wantRejected: 1,
		},
		{
			desc:         "result over max_headers_count: 500",
			mutation:     sets(manySets(97)...),
			wantStatus:   500,
			wantDetails:  "Header_mutation_causes_end_result_header_count_103_or_header_size_680_bytes,_exceeding_the_count_limit_100_or_the_size_limit_60_kilobytes",
			want:         []string{},
			wantRejected: 1,
		},
		{
			desc: "default rules ignore x-envoy-*, removing :status and appending to :status",
			mutation: &extprocv3.HeaderMutation{
				SetHeaders:    []*corev3.HeaderValueOption{set("x-envoy-foo", "1", false), set(":status", "201", true)},
				RemoveHeaders: []string{":status"},
			},
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json"},
			wantRejected: 3,
		},
		{
			desc:       "set :status to a valid code changes the status",
			mutation:   sets(set(":status", "418", false)),
			wantStatus: 418,
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json"},
		},
		{
			desc:       "set :status below 200 is ignored",
			mutation:   sets(set(":status", "101", false)),
			wantStatus: 200,
			want: []string{"vary", "Accept-Encoding", "set-cookie", "a=1", "x-custom", "up",
				"access-control-allow-origin", "*", "content-type", "application/json"},
			wantRejected: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, _ := startProcessor(t, answer(func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if m.GetRequestHeaders() != nil {
					return requestHeadersReply(nil, nil)
				}
				return responseHeadersReply(tc.mutation)
			}))
			sim := newSim(conn, envoystandin.Config{})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{Headers: upstreamHeaders})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			wantStatus := tc.wantStatus
			if wantStatus == 0 {
				wantStatus = 200
			}
			if res.Status != wantStatus || (tc.wantDetails != "" && res.Details != tc.wantDetails) {
				t.Errorf("status %d details %q, want %d %q", res.Status, res.Details, wantStatus, tc.wantDetails)
			}
			if got := flat(res.Headers); !slices.Equal(got, tc.want) {
				t.Errorf("headers:\n got %q\nwant %q", got, tc.want)
			}
			if got := sim.Stats().RejectedHeaderMutations; got != tc.wantRejected {
				t.Errorf("rejected_header_mutations = %d, want %d", got, tc.wantRejected)
			}
		})
	}
}

// docs/envoy.md#what-the-default-mutation-rules-refuse: request-phase mutations and the routing-header rules.
func TestRequestHeaderMutation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc         string
		rules        *mutationrulesv3.HeaderMutationRules
		mutation     *extprocv3.HeaderMutation
		wantPath     string
		wantAuth     string
		wantHeaders  []string
		wantStatus   int
		wantDetails  string
		wantRejected uint64
	}{
		{
			desc:         ":path may be set; :authority, host and :method are ignored",
			mutation:     sets(set(":path", "/v2", false), set(":authority", "evil.example", false), set("host", "evil.example", false), set(":method", "DELETE", false), set("x-added", "1", false)),
			wantPath:     "/v2",
			wantAuth:     "api.example",
			wantHeaders:  []string{"origin", "https://app.example", "x-added", "1"},
			wantRejected: 3,
		},
		{
			desc:        "allow_all_routing lets :authority through",
			rules:       &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
			mutation:    sets(set(":authority", "other.example", false)),
			wantPath:    "/v1",
			wantAuth:    "other.example",
			wantHeaders: []string{"origin", "https://app.example"},
		},
		{
			desc:         "host and :authority can never be removed",
			rules:        &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
			mutation:     &extprocv3.HeaderMutation{RemoveHeaders: []string{"host", ":authority", "origin"}},
			wantPath:     "/v1",
			wantAuth:     "api.example",
			wantHeaders:  []string{},
			wantRejected: 2,
		},
		{
			desc:         "disallow_is_error turns an ignored change into a 500",
			rules:        &mutationrulesv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true)},
			mutation:     sets(set("x-envoy-foo", "1", false)),
			wantStatus:   500,
			wantDetails:  "Invalid_attempt_to_modify_x-envoy-foo",
			wantRejected: 1,
		},
		{
			desc:         "disallow_expression",
			rules:        &mutationrulesv3.HeaderMutationRules{DisallowExpression: regex("x-.*")},
			mutation:     sets(set("x-one", "1", false), set("y-two", "2", false)),
			wantPath:     "/v1",
			wantAuth:     "api.example",
			wantHeaders:  []string{"origin", "https://app.example", "y-two", "2"},
			wantRejected: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, _ := startProcessor(t, answer(func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if m.GetRequestHeaders() != nil {
					return requestHeadersReply(tc.mutation, nil)
				}
				return responseHeadersReply(nil)
			}))
			sim := newSim(conn, envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{MutationRules: tc.rules}})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "api.example", Path: "/v1",
				Headers: envoystandin.NewHeaders("origin", "https://app.example")}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if got := sim.Stats().RejectedHeaderMutations; got != tc.wantRejected {
				t.Errorf("rejected_header_mutations = %d, want %d", got, tc.wantRejected)
			}
			if tc.wantStatus != 0 {
				check(t, res, outcome{status: tc.wantStatus, details: tc.wantDetails})
				return
			}
			up := res.UpstreamRequest
			if up == nil {
				t.Fatalf("upstream not reached: %d %s", res.Status, res.Details)
			}
			if up.Path != tc.wantPath || up.Authority != tc.wantAuth || up.Method != "GET" {
				t.Errorf("upstream saw %s %s%s, want GET %s%s", up.Method, up.Authority, up.Path, tc.wantAuth, tc.wantPath)
			}
			if got := flat(up.Headers); !slices.Equal(got, tc.wantHeaders) {
				t.Errorf("upstream headers:\n got %q\nwant %q", got, tc.wantHeaders)
			}
		})
	}
}

// docs/envoy.md#which-reply-answers-which-message: CONTINUE_AND_REPLACE with a body mutation replaces the body.
func TestContinueAndReplace(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, answer(func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if m.GetRequestHeaders() != nil {
			return requestHeadersReply(nil, nil)
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{
				Status:       extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("replaced")}},
			},
		}}}
	}))
	sim := newSim(conn, envoystandin.Config{})
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"},
		envoystandin.Upstream{Headers: envoystandin.NewHeaders("content-length", "8"), Body: []byte("original")})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if string(res.Body) != "replaced" || res.Headers.Has("content-length") {
		t.Errorf("body %q headers %q; want the replaced body and no content-length", res.Body, res.Headers)
	}
}

func regex(re string) *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: re} }

func flat(h envoystandin.Headers) []string {
	out := []string{}
	for _, e := range h {
		out = append(out, e.Name, e.Value)
	}
	return out
}

func manySets(n int) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for i := range n {
		out = append(out, set(fmt.Sprintf("x-h%d", i), "v", false))
	}
	return out
}
