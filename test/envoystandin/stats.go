package envoystandin

import "sync/atomic"

// Stats mirrors the ext_proc filter's counters
// (http.<stat_prefix>.ext_proc.*, docs/envoy.md#what-the-stand-in-reproduces item 11), summed over every
// request a Sim has run. Incremented where Envoy increments them, including
// Envoy's quirks: an error status from the server counts as streams_failed,
// not streams_closed; a clean server close counts as streams_closed.
type Stats struct {
	StreamsStarted                 uint64
	StreamMsgsSent                 uint64
	StreamMsgsReceived             uint64
	SpuriousMsgsReceived           uint64
	RejectedHeaderMutations        uint64
	MessageTimeouts                uint64
	FailureModeAllowed             uint64
	StreamsClosed                  uint64
	StreamsFailed                  uint64
	OverrideMessageTimeoutReceived uint64
	OverrideMessageTimeoutIgnored  uint64
}

type counters struct {
	streamsStarted                 atomic.Uint64
	streamMsgsSent                 atomic.Uint64
	streamMsgsReceived             atomic.Uint64
	spuriousMsgsReceived           atomic.Uint64
	rejectedHeaderMutations        atomic.Uint64
	messageTimeouts                atomic.Uint64
	failureModeAllowed             atomic.Uint64
	streamsClosed                  atomic.Uint64
	streamsFailed                  atomic.Uint64
	overrideMessageTimeoutReceived atomic.Uint64
	overrideMessageTimeoutIgnored  atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		StreamsStarted:                 c.streamsStarted.Load(),
		StreamMsgsSent:                 c.streamMsgsSent.Load(),
		StreamMsgsReceived:             c.streamMsgsReceived.Load(),
		SpuriousMsgsReceived:           c.spuriousMsgsReceived.Load(),
		RejectedHeaderMutations:        c.rejectedHeaderMutations.Load(),
		MessageTimeouts:                c.messageTimeouts.Load(),
		FailureModeAllowed:             c.failureModeAllowed.Load(),
		StreamsClosed:                  c.streamsClosed.Load(),
		StreamsFailed:                  c.streamsFailed.Load(),
		OverrideMessageTimeoutReceived: c.overrideMessageTimeoutReceived.Load(),
		OverrideMessageTimeoutIgnored:  c.overrideMessageTimeoutIgnored.Load(),
	}
}
