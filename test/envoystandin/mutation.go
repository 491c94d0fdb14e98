package envoystandin

import (
	"fmt"
	"strings"
	"sync/atomic"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// envoyError is a non-OK absl::Status inside the filter. Its code decides
// how Filter::onReceiveMessage reacts (FailedPrecondition: spurious message,
// docs/envoy.md#spurious-replies; anything else: local reply, docs/envoy.md#errors-timeouts-and-fail-open) and its message, with
// whitespace replaced by "_", becomes the local reply's details. The messages
// are Envoy's own, verbatim, so that details match what access logs show.
type envoyError struct {
	spurious bool // absl::IsFailedPrecondition
	msg      string
}

func (e *envoyError) Error() string { return e.msg }

func invalidArgument(format string, args ...any) *envoyError {
	return &envoyError{msg: fmt.Sprintf(format, args...)}
}

func failedPrecondition(msg string) *envoyError {
	return &envoyError{spurious: true, msg: msg}
}

// mutationLimits are the HCM limits a mutation and its result must respect.
type mutationLimits struct {
	maxCount int
	maxKB    int
}

// applyHeaderMutation is MutationUtils::applyHeaderMutations
// (mutation_utils.cc), docs/envoy.md#the-order-envoy-applies-a-mutation-in, step for step. It returns an error
// (Envoy: absl::InvalidArgumentError) whose text becomes the local reply's
// details; entries applied before the error stay applied, as in Envoy.
//
// Semantics worth knowing (docs/envoy.md#append-versus-overwrite, docs/envoy.md#repeated-and-inline-headers, docs/envoy.md#what-the-stand-in-reproduces item 9):
//   - remove_headers run before set_headers;
//   - only the deprecated `append` BoolValue is read, default false
//     (overwrite); append_action and keep_empty_value are ignored;
//   - the value is raw_value; a value-only header sets an empty value
//     (issue #31555); value and raw_value both set is an error;
//   - append on an inline name (vary, access-control-*) joins with ",".
func applyHeaderMutation(m *extprocv3.HeaderMutation, h *headerMap, replacing bool, chk *checker, lim mutationLimits, rejected *atomic.Uint64) *envoyError {
	removes, sets := m.GetRemoveHeaders(), m.GetSetHeaders()
	if len(removes) > lim.maxCount || len(sets) > lim.maxCount {
		rejected.Add(1)
		return invalidArgument("Header mutation remove header count %d or set header count %d exceed the HCM header countlimit %d",
			len(removes), len(sets), lim.maxCount)
	}

	for _, name := range removes {
		if !headerNameIsValid(name) {
			rejected.Add(1)
			return invalidArgument("Invalid character in remove_headers mutation.")
		}
		key := strings.ToLower(name)
		switch chk.check(opRemove, key, "") {
		case checkOK:
			h.remove(key)
		case checkIgnore:
			rejected.Add(1)
		case checkFail:
			rejected.Add(1)
			return invalidArgument("Invalid attempt to remove %s", key)
		}
	}

	for _, opt := range sets {
		hv := opt.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			rejected.Add(1)
			return invalidArgument("Only one of value or raw_value in the HeaderValue message should be set.")
		}
		// Since 1.32 (PR #35388) only raw_value is read: "Any setting in the
		// value field from the ext_proc server will be ignored".
		value := string(hv.GetRawValue())
		if !headerNameIsValid(hv.GetKey()) || !headerValueIsValid(value) {
			rejected.Add(1)
			return invalidArgument("Invalid character in set_headers mutation.")
		}
		key := strings.ToLower(hv.GetKey())
		//lint:ignore SA1019 Envoy's ext_proc reads only the deprecated append field (docs/envoy.md#append-versus-overwrite).
		appendMode := opt.GetAppend().GetValue() // PROTOBUF_GET_WRAPPED_OR_DEFAULT(sh, append, false)
		op := opSet
		if appendMode && h.has(key) {
			op = opAppend
		}
		result := chk.check(op, key, value)
		if replacing && key == ":method" {
			// CONTINUE_AND_REPLACE may always change :method, for compatibility.
			result = checkOK
		}
		switch result {
		case checkOK:
			if appendMode {
				h.addCopy(key, value)
			} else {
				h.setCopy(key, value)
			}
		case checkIgnore:
			rejected.Add(1)
		case checkFail:
			rejected.Add(1)
			return invalidArgument("Invalid attempt to modify %s", key)
		}
	}

	// MutationUtils::headerMutationResultCheck.
	if h.size() > lim.maxCount || h.byteSize() > lim.maxKB*1024 {
		rejected.Add(1)
		return invalidArgument("Header mutation causes end result header count %d or header size %d bytes, exceeding the count limit %d or the size limit %d kilobytes",
			h.size(), h.byteSize(), lim.maxCount, lim.maxKB)
	}
	return nil
}
