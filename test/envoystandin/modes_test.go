package envoystandin_test

import (
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// docs/envoy.md#skipping-the-response-phase, docs/envoy.md#what-the-stand-in-reproduces items 3 and 12: mode_override is honoured only when
// allowed, and DEFAULT fields mean "no change" only from 1.34.
func TestModeOverride(t *testing.T) {
	t.Parallel()
	onlyBodyNone := &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_NONE}
	tests := []struct {
		desc     string
		cfg      envoystandin.Config
		override *extprocfilterv3.ProcessingMode
		wantMsgs int // messages the server receives on the stream
	}{
		{
			desc:     "allow_mode_override: response phase skipped",
			cfg:      envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true}},
			override: skipResponse(),
			wantMsgs: 1,
		},
		{
			desc:     "default allow_mode_override false: ignored, response_headers still sent",
			cfg:      envoystandin.Config{},
			override: skipResponse(),
			wantMsgs: 2,
		},
		{
			desc: "not in allowed_override_modes: ignored",
			cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true,
				AllowedOverrideModes: []*extprocfilterv3.ProcessingMode{{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SEND}}}},
			override: skipResponse(),
			wantMsgs: 2,
		},
		{
			desc: "in allowed_override_modes: honoured",
			cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true,
				AllowedOverrideModes: []*extprocfilterv3.ProcessingMode{skipResponse()}}},
			override: skipResponse(),
			wantMsgs: 1,
		},
		{
			desc: "FULL_DUPLEX_STREAMED configured: ignored",
			cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true,
				ProcessingMode: &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED}}},
			override: skipResponse(),
			wantMsgs: 2,
		},
		{
			desc: "1.34+: DEFAULT response_header_mode keeps the configured SKIP",
			cfg: envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true,
				ProcessingMode: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}}},
			override: onlyBodyNone,
			wantMsgs: 1,
		},
		{
			desc: "1.33: the override replaces the whole mode, DEFAULT means SEND",
			cfg: envoystandin.Config{Version: envoystandin.Envoy133, Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true,
				ProcessingMode: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}}},
			override: onlyBodyNone,
			wantMsgs: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if m.GetRequestHeaders() != nil {
					return requestHeadersReply(nil, tc.override)
				}
				return responseHeadersReply(sets(set("x-seen", "1", false)))
			}))
			sim := newSim(conn, tc.cfg)
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example"}, envoystandin.Upstream{})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			rec := proc.next()
			if len(rec.msgs) != tc.wantMsgs {
				t.Fatalf("server got %d messages, want %d (log: %q)", len(rec.msgs), tc.wantMsgs, res.Log)
			}
			if got, want := res.Headers.Has("x-seen"), tc.wantMsgs == 2; got != want {
				t.Errorf("response has the response-phase header: %v, want %v", got, want)
			}
			if !res.UpstreamReached || res.Status != 200 {
				t.Errorf("status %d, upstream reached %v; want 200 from the upstream", res.Status, res.UpstreamReached)
			}
		})
	}
}

// docs/envoy.md#message-sequence, docs/envoy.md#per-route-configuration, docs/envoy.md#what-the-stand-in-reproduces item 12: per-route config.
func TestPerRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc        string
		route       *extprocfilterv3.ExtProcPerRoute
		wantStreams uint64
		wantMsgs    int
	}{
		{
			desc:        "disabled: no stream at all",
			route:       &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Disabled{Disabled: true}},
			wantStreams: 0,
		},
		{
			desc: "overrides.processing_mode replaces the whole mode",
			route: &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Overrides{Overrides: &extprocfilterv3.ExtProcOverrides{
				ProcessingMode: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP},
			}}},
			wantStreams: 1,
			wantMsgs:    1,
		},
		{
			desc: "request headers SKIP: the stream opens for response_headers",
			route: &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Overrides{Overrides: &extprocfilterv3.ExtProcOverrides{
				ProcessingMode: &extprocfilterv3.ProcessingMode{RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP},
			}}},
			wantStreams: 1,
			wantMsgs:    1,
		},
		{
			desc:        "no route config: both phases",
			wantStreams: 1,
			wantMsgs:    2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			conn, proc := startProcessor(t, answer(passThrough))
			sim := newSim(conn, envoystandin.Config{})
			res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example", Route: tc.route}, envoystandin.Upstream{Status: 204})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if res.Status != 204 || !res.UpstreamReached {
				t.Errorf("status %d, upstream reached %v; want 204 from the upstream", res.Status, res.UpstreamReached)
			}
			if got := sim.Stats().StreamsStarted; got != tc.wantStreams {
				t.Fatalf("streams_started = %d, want %d", got, tc.wantStreams)
			}
			if tc.wantStreams == 0 {
				if n := proc.streamsOpened(); n != 0 {
					t.Errorf("server saw %d streams, want none", n)
				}
				return
			}
			if got := len(proc.next().msgs); got != tc.wantMsgs {
				t.Errorf("server got %d messages, want %d", got, tc.wantMsgs)
			}
		})
	}
}

// docs/envoy.md#errors-timeouts-and-fail-open: per-route failure_mode_allow overrides the filter's.
func TestPerRouteFailureModeAllow(t *testing.T) {
	t.Parallel()
	conn, _ := startProcessor(t, func(s *procStream) error {
		s.recv()
		s.send(&extprocv3.ProcessingResponse{}) // spurious
		s.drain()
		return nil
	})
	sim := newSim(conn, envoystandin.Config{})
	route := &extprocfilterv3.ExtProcPerRoute{Override: &extprocfilterv3.ExtProcPerRoute_Overrides{Overrides: &extprocfilterv3.ExtProcOverrides{
		FailureModeAllow: wrapperspb.Bool(true),
	}}}
	res, err := sim.Do(t.Context(), envoystandin.Request{Authority: "a.example", Route: route}, envoystandin.Upstream{})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != 200 || !res.UpstreamReached {
		t.Errorf("status %d (%s), upstream reached %v; want the spurious reply ignored", res.Status, res.Details, res.UpstreamReached)
	}
}
