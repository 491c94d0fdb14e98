package loadgen

import (
	"errors"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// FilterConfig is the ext_proc filter the load plays: Envoy's defaults
// (SEND/SEND/NONE/NONE/SKIP/SKIP) plus allow_mode_override, which corsgate's
// deployment guide asks for so that requests without a policy cost one round
// trip, and the given message_timeout (Envoy's default is 200 ms; a reply
// later than that is a 504, counted as an error).
func FilterConfig(messageTimeout time.Duration) envoystandin.Config {
	return envoystandin.Config{Filter: &extprocfilterv3.ExternalProcessor{
		AllowModeOverride: true,
		MessageTimeout:    durationpb.New(messageTimeout),
	}}
}

// Dial opens conns HTTP/2 connections to the ext_proc server at addr (an
// Envoy worker thread keeps one to each ext_proc host) and returns one Sim
// per connection, playing the filter cfg (see FilterConfig), and a function
// that closes them.
func Dial(addr string, conns int, cfg envoystandin.Config) ([]*envoystandin.Sim, func(), error) {
	var sims []*envoystandin.Sim
	var cc []*grpc.ClientConn
	closeAll := func() {
		for _, c := range cc {
			c.Close()
		}
	}
	for range max(conns, 1) {
		// Each ClientConn is its own HTTP/2 connection.
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, errors.Join(errors.New("loadgen: connecting to "+addr), err)
		}
		c.Connect()
		cc = append(cc, c)
		sims = append(sims, envoystandin.New(c, cfg))
	}
	return sims, closeAll, nil
}
