// Package extproctest plays an ext_proc stream in memory, without a
// transport, for benchmarks and fuzz targets that count or check the
// server's own work (extproc.Server.Process) apart from gRPC's: each message
// reaches the server through extprocwire.Codec as grpc-go would hand it over,
// and each reply is encoded by it as grpc-go's send would. The real thing,
// over loopback gRPC, is what every other test runs.
package extproctest

import (
	"context"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/extprocwire"
)

// immediateResponse is ProcessingResponse.immediate_response's field number.
const immediateResponse = 7

// Stream is one ext_proc stream's server side. Like Envoy, it sends the
// messages in order, stops after an immediate response, and then
// half-closes (io.EOF). Replay plays the same messages again, so a
// benchmark loop allocates nothing of its own.
type Stream struct {
	grpc.ServerStream
	codec *extprocwire.Codec
	msgs  []mem.BufferSlice
	next  int
	done  bool // an immediate response was sent
	// Keep makes the stream keep each reply, decoded, in Replies (off in
	// benchmarks, not to count its own allocations).
	Keep    bool
	Replies []*extprocv3.ProcessingResponse
}

// New returns a stream that sends msgs, each marshalled once here.
func New(msgs ...*extprocv3.ProcessingRequest) *Stream {
	s := &Stream{codec: extprocwire.NewCodec(), msgs: make([]mem.BufferSlice, len(msgs))}
	for i, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			panic("extproctest: " + err.Error())
		}
		s.msgs[i] = mem.BufferSlice{mem.SliceBuffer(b)}
	}
	return s
}

// Replay rewinds the stream to its first message and forgets its replies.
func (s *Stream) Replay() {
	s.next, s.done, s.Replies = 0, false, s.Replies[:0]
}

// RecvMsg hands the server the next message, as grpc-go's recv does.
func (s *Stream) RecvMsg(m any) error {
	if s.next == len(s.msgs) || s.done {
		return io.EOF
	}
	s.next++
	return s.codec.Unmarshal(s.msgs[s.next-1], m)
}

// SendMsg encodes a reply, as grpc-go's send does.
func (s *Stream) SendMsg(m any) error {
	data, err := s.codec.Marshal(m)
	if err != nil {
		return err
	}
	defer data.Free()
	if len(data) > 0 {
		num, _, n := protowire.ConsumeTag(data[0].ReadOnlyData())
		s.done = n > 0 && num == immediateResponse
	}
	if s.Keep {
		r := new(extprocv3.ProcessingResponse)
		if err := proto.Unmarshal(data.Materialize(), r); err != nil {
			return err
		}
		s.Replies = append(s.Replies, r)
	}
	return nil
}

// Context is the stream's context, never cancelled.
func (s *Stream) Context() context.Context { return context.Background() }

// SetHeader, SendHeader and SetTrailer accept and drop metadata.
func (s *Stream) SetHeader(metadata.MD) error  { return nil }
func (s *Stream) SendHeader(metadata.MD) error { return nil }
func (s *Stream) SetTrailer(metadata.MD)       {}
