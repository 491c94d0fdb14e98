package main

import (
	"testing"
	"time"

	"github.com/corsgate/corsgate/extproc"
)

// TestFlagLimits: --grpc-stream-idle-timeout 0 and --grpc-max-streams 0
// disable, as their help says; extproc.Limits reads zero as the default.
func TestFlagLimits(t *testing.T) {
	got := flagLimits(extproc.Limits{StreamIdleTimeout: 0, MaxStreams: 0, MaxStreamsPerConnection: 7})
	if got.StreamIdleTimeout >= 0 || got.MaxStreams >= 0 {
		t.Errorf("0 on the command line = %+v, want both disabled (negative)", got)
	}
	if got.MaxStreamsPerConnection != 7 {
		t.Errorf("other limits changed: %+v", got)
	}
	set := flagLimits(extproc.Limits{StreamIdleTimeout: time.Minute, MaxStreams: 10})
	if set.StreamIdleTimeout != time.Minute || set.MaxStreams != 10 {
		t.Errorf("explicit limits changed: %+v", set)
	}
}
