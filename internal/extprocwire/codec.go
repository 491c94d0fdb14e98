package extprocwire

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is a gRPC codec for a server whose ExternalProcessor stream
// receives into *Request and sends *Encoded or *Reply (or, if it must,
// go-control-plane messages, which grpc-go's codec marshals).
// Every other message, of every other service (health, reflection), goes to
// grpc-go's own proto codec, unchanged. It is installed with
// grpc.ForceServerCodecV2, which is why it must answer for all of them.
//
// Its name is "proto", the content-subtype Envoy's gRPC client sends
// (application/grpc).
type Codec struct {
	fallback encoding.CodecV2
}

var _ encoding.CodecV2 = (*Codec)(nil)

// NewCodec returns the codec, falling back to grpc-go's registered proto
// codec.
func NewCodec() *Codec {
	c := encoding.GetCodecV2(protocodec.Name)
	if c == nil {
		panic("extprocwire: grpc-go's proto codec is not registered")
	}
	return &Codec{fallback: c}
}

// Name is the content-subtype the codec answers for.
func (*Codec) Name() string { return protocodec.Name }

// Marshal writes v: an Encoded or a Reply as it is, anything else (health
// messages, or go-control-plane messages of a server that sends them) with
// grpc-go's codec.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *Encoded:
		// Shared and never written: gRPC copies it into its frame, and
		// freeing a SliceBuffer does nothing.
		return m.data, nil
	case *Reply:
		return m.data(), nil
	}
	return c.fallback.Marshal(v)
}

// Unmarshal reads data into v: a *Request with Decode, anything else with
// grpc-go's codec.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*Request)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return Decode(data[0].ReadOnlyData(), r)
	}
	// A message that spans several transport buffers is read from one
	// pooled copy; Decode keeps nothing of it.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return Decode(buf.ReadOnlyData(), r)
}

// Encoded is a message encoded once, at start-up, and sent as it is: the
// replies that never change (pass through, continue, skip the response
// phase) cost no marshalling at all.
type Encoded struct {
	b    []byte
	data mem.BufferSlice // b, as Marshal returns it, built once
}

// Encode encodes m once. It panics if m cannot be encoded, which for the
// fixed replies it is meant for is a programming error.
func Encode(m proto.Message) *Encoded {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("extprocwire.Encode(%T): %v", m, err))
	}
	return &Encoded{b: b, data: mem.BufferSlice{mem.SliceBuffer(b)}}
}

// Bytes returns the encoding; it must not be written to.
func (e *Encoded) Bytes() []byte { return e.b }

// ServerOption installs the codec on a grpc.Server. Every message that is
// not a *Request or an *Encoded still goes through grpc-go's proto codec.
func ServerOption() grpc.ServerOption {
	return grpc.ForceServerCodecV2(NewCodec())
}

// ServiceName is the ExternalProcessor service's full name.
const ServiceName = "envoy.service.ext_proc.v3.ExternalProcessor"

// ServiceDesc is the ExternalProcessor service (one bidirectional method,
// Process) served by process, which receives into *Request and sends
// *Encoded replies or go-control-plane messages. Register it with
// grpc.Server.RegisterService(desc, nil) on a server built with
// ServerOption; grpc-go's proto codec cannot read into a *Request.
func ServiceDesc(process func(grpc.ServerStream) error) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		// Any value will do as the implementation: process is a closure.
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Process",
			Handler:       func(_ any, stream grpc.ServerStream) error { return process(stream) },
			ServerStreams: true,
			ClientStreams: true,
		}},
		// The file grpc-go's reflection service looks the service up in.
		Metadata: "envoy/service/ext_proc/v3/external_processor.proto",
	}
}
