package envoystandin

import (
	"errors"
	"fmt"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// Version selects the Envoy release whose ext_proc behaviour is reproduced
// where that behaviour changed (docs/envoy.md#version-timeline). The zero
// value means Latest.
type Version int

const (
	// Envoy133: header values only in raw_value (since 1.32); spurious replies
	// fail open; mode_override replaces the whole mode; no protocol_config;
	// errors are always 500; the stream is closed only when the HTTP request ends.
	Envoy133 Version = 133
	// Envoy134: DEFAULT header/trailer modes in mode_override mean "no change"
	// (PR #38254); protocol_config on the first message (PR #38755).
	Envoy134 Version = 134
	// Envoy135: a spurious reply fails closed unless failure_mode_allow (PR #39994).
	Envoy135 Version = 135
	// Envoy136: status_on_error (PR #41124); gRPC error details carry the
	// status message, ext_proc_error_gRPC_error_<code>{<message>} (PR #40808).
	Envoy136 Version = 136
	// Envoy137: the stream is closed as soon as no further message can be
	// needed (stream-close optimisation, PRs #41425, #42507).
	Envoy137 Version = 137
	// Latest is the newest behaviour the stand-in knows.
	Latest = Envoy137
)

func (v Version) String() string {
	v = v.effective()
	return fmt.Sprintf("Envoy 1.%d", int(v)-100)
}

func (v Version) effective() Version {
	if v == 0 {
		return Latest
	}
	return v
}

func (v Version) modeOverrideDefaultKeeps() bool { return v.effective() >= Envoy134 }
func (v Version) sendsProtocolConfig() bool      { return v.effective() >= Envoy134 }
func (v Version) spuriousFailsClosed() bool      { return v.effective() >= Envoy135 }
func (v Version) honoursStatusOnError() bool     { return v.effective() >= Envoy136 }
func (v Version) grpcErrorHasMessage() bool      { return v.effective() >= Envoy136 }
func (v Version) closesStreamEarly() bool        { return v.effective() >= Envoy137 }

// Config configures a Sim.
type Config struct {
	// Filter is the ext_proc filter configuration exactly as it would appear in
	// the HCM's http_filters. Nil means every field at its default: message
	// timeout 200 ms, processing mode SEND/SEND/NONE/NONE/SKIP/SKIP,
	// allow_mode_override false, failure_mode_allow false, status_on_error 500
	// (docs/envoy.md#processing-modes, docs/envoy.md#errors-timeouts-and-fail-open). grpc_service is not read: the Sim's ClientConn is
	// the ext_proc cluster; grpc_service.initial_metadata is sent.
	//
	// Reproduced: processing_mode, allow_mode_override, allowed_override_modes,
	// failure_mode_allow, message_timeout, max_message_timeout,
	// disable_immediate_response, status_on_error, mutation_rules,
	// forward_rules, send_body_without_waiting_for_header_response (only as a
	// mode_override gate). Ignored, because nothing in the stand-in can observe
	// them: stat_prefix, filter_metadata, metadata_options (there is no dynamic
	// metadata, so metadata_context is always empty, as in Envoy when no
	// forwarded namespace exists), route_cache_action,
	// disable_clear_route_cache, deferred_close_timeout,
	// allow_content_length_header, emit_client_span. Refused by Validate:
	// observability_mode, http_service, request_attributes,
	// response_attributes, processing_request_modifier, on_processing_response.
	Filter *extprocfilterv3.ExternalProcessor

	// Version picks the release whose behaviour is reproduced; zero is Latest.
	Version Version

	// GracefulClose models the runtime guard
	// envoy.reloadable_features.ext_proc_graceful_grpc_close (default false):
	// half-close and wait up to one second for the server's status instead of
	// half-close plus reset (docs/envoy.md#how-a-stream-ends). The wait happens in the
	// background, as in Envoy it does not delay the HTTP response.
	GracefulClose bool

	// EnvoyHeaders adds the headers a default HCM and router add around the
	// filter chain: x-forwarded-proto and x-request-id on the request when
	// absent (before ext_proc runs, docs/envoy.md#how-request-headers-arrive) and
	// x-envoy-upstream-service-time on upstream responses. Off by default so
	// that tests see exactly the headers they sent.
	EnvoyHeaders bool

	// MaxHeadersCount is the HCM's max_headers_count; zero means Envoy's
	// default of 100. It bounds the request, mutations and their results
	// (docs/envoy.md#the-order-envoy-applies-a-mutation-in).
	MaxHeadersCount int
}

// Envoy defaults (docs/envoy.md#processing-modes, docs/envoy.md#errors-timeouts-and-fail-open, docs/envoy.md#how-a-stream-ends, docs/envoy.md#the-order-envoy-applies-a-mutation-in).
const (
	defaultMessageTimeout  = 200 * time.Millisecond // config.h DefaultMessageTimeoutMs
	defaultStatusOnError   = 500
	defaultMaxHeadersCount = 100
	defaultMaxHeadersKB    = 60 // max_request_headers_kb / max_response_headers_kb
	remoteCloseTimeout     = time.Second
)

// Validate reports a configuration the stand-in cannot run: one Envoy would
// refuse (the proto's validation rules), one naming a feature the stand-in does
// not reproduce, or a Version it does not know. Sim.Do returns the same error.
func (c Config) Validate() error {
	var errs []error
	if v := c.Version; v != 0 && (v < Envoy133 || v > Latest) {
		errs = append(errs, fmt.Errorf("envoystandin: Version %d is not modelled: use one of Envoy133..Envoy137 or leave it zero for Latest", int(v)))
	}
	if c.MaxHeadersCount < 0 {
		errs = append(errs, fmt.Errorf("envoystandin: MaxHeadersCount %d is negative: leave it zero for Envoy's default of 100", c.MaxHeadersCount))
	}
	f := c.Filter
	if f == nil {
		return errors.Join(errs...)
	}
	if err := f.ValidateAll(); err != nil {
		errs = append(errs, fmt.Errorf("envoystandin: Envoy would reject the ext_proc filter config: %w", err))
	}
	refuse := func(set bool, field, why string) {
		if set {
			errs = append(errs, fmt.Errorf("envoystandin: %s is not reproduced by the stand-in (%s): remove it from Config.Filter", field, why))
		}
	}
	refuse(f.GetObservabilityMode(), "observability_mode", "replies would be ignored, useless for CORS, docs/envoy.md#observability-mode")
	refuse(f.GetHttpService() != nil, "http_service", "only the gRPC protocol is modelled")
	refuse(len(f.GetRequestAttributes()) > 0, "request_attributes", "needs a CEL evaluator")
	refuse(len(f.GetResponseAttributes()) > 0, "response_attributes", "needs a CEL evaluator")
	refuse(f.GetProcessingRequestModifier() != nil, "processing_request_modifier", "an Envoy extension")
	refuse(f.GetOnProcessingResponse() != nil, "on_processing_response", "an Envoy extension")
	if _, err := newChecker(f.GetMutationRules()); err != nil {
		errs = append(errs, err)
	}
	if _, err := newForwardRules(f.GetForwardRules()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// filterConfig is Config resolved once: Envoy's FilterConfig.
type filterConfig struct {
	proto             *extprocfilterv3.ExternalProcessor // never nil
	version           Version
	messageTimeout    time.Duration
	maxMessageTimeout time.Duration
	statusOnError     int
	checker           *checker
	forward           *forwardRules
	graceful          bool
	envoyHeaders      bool
	maxHeadersCount   int
}

func resolve(c Config) (*filterConfig, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f := c.Filter
	if f == nil {
		f = &extprocfilterv3.ExternalProcessor{}
	}
	fc := &filterConfig{
		proto:           f,
		version:         c.Version.effective(),
		messageTimeout:  defaultMessageTimeout,
		statusOnError:   defaultStatusOnError,
		graceful:        c.GracefulClose,
		envoyHeaders:    c.EnvoyHeaders,
		maxHeadersCount: c.MaxHeadersCount,
	}
	if fc.maxHeadersCount == 0 {
		fc.maxHeadersCount = defaultMaxHeadersCount
	}
	if f.GetMessageTimeout() != nil {
		fc.messageTimeout = f.GetMessageTimeout().AsDuration()
	}
	if f.GetMaxMessageTimeout() != nil {
		fc.maxMessageTimeout = f.GetMaxMessageTimeout().AsDuration()
	}
	// status_on_error exists since ~1.36; before, errors were hard-wired 500.
	if code := f.GetStatusOnError().GetCode(); code != 0 && fc.version.honoursStatusOnError() {
		fc.statusOnError = int(code)
	}
	var err error
	if fc.checker, err = newChecker(f.GetMutationRules()); err != nil {
		return nil, err
	}
	if fc.forward, err = newForwardRules(f.GetForwardRules()); err != nil {
		return nil, err
	}
	return fc, nil
}

// mode returns the configured processing mode; an unset one is all DEFAULT,
// which processorState reads as SEND/SEND/NONE/NONE/SKIP/SKIP (docs/envoy.md#processing-modes).
func (fc *filterConfig) mode() *extprocfilterv3.ProcessingMode {
	if m := fc.proto.GetProcessingMode(); m != nil {
		return m
	}
	return &extprocfilterv3.ProcessingMode{}
}
