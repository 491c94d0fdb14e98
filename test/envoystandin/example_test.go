package envoystandin_test

import (
	"context"
	"fmt"
	"net"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsgate/corsgate/test/envoystandin"
)

// exampleServer answers every request_headers with reply and every
// response_headers with an empty HeadersResponse.
type exampleServer struct {
	extprocv3.UnimplementedExternalProcessorServer
	reply *extprocv3.ProcessingResponse
}

func (e exampleServer) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		m, err := s.Recv()
		if err != nil {
			return nil // io.EOF or Canceled: Envoy closed the stream
		}
		r := e.reply
		if m.GetResponseHeaders() != nil {
			r = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		}
		if err := s.Send(r); err != nil {
			return err
		}
	}
}

// serve starts srv on loopback and returns a connection to it.
func serve(srv extprocv3.ExternalProcessorServer) (*grpc.ClientConn, func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	return conn, func() { conn.Close(); gs.Stop() }
}

// A preflight answered by the ext_proc server with an ImmediateResponse never
// reaches the upstream (which, like many apps, would answer OPTIONS with 405).
func Example() {
	conn, stop := serve(exampleServer{reply: &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
				Header: &corev3.HeaderValue{Key: "access-control-allow-origin", RawValue: []byte("https://app.example")},
				Append: wrapperspb.Bool(false),
			}}},
			Details: "cors preflight",
		}},
	}})
	defer stop()

	sim := envoystandin.New(conn, envoystandin.Config{
		Filter: &extprocfilterv3.ExternalProcessor{AllowModeOverride: true, MessageTimeout: durationpb.New(5 * time.Second)},
	})
	res, err := sim.Do(context.Background(), envoystandin.Request{
		Method: "OPTIONS", Authority: "api.example.com", Path: "/v1",
		Headers: envoystandin.NewHeaders("origin", "https://app.example", "access-control-request-method", "PUT"),
	}, envoystandin.Upstream{Status: 405})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Status, res.Headers.Get("access-control-allow-origin"), res.Details, res.UpstreamReached)
	// Output: 204 https://app.example cors_preflight false
}

// The pitfall of issue #31555: a header written in `value` instead of
// `raw_value` reaches the client empty, because Envoy (>= 1.32) reads only
// raw_value. The server's mistake is silent: status 200, no error.
func Example_valueInsteadOfRawValue() {
	conn, stop := serve(exampleServer{reply: &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
				Header: &corev3.HeaderValue{Key: "x-tenant", Value: "acme"}, // wrong field
				Append: wrapperspb.Bool(false),
			}}}},
		}},
	}})
	defer stop()

	sim := envoystandin.New(conn, envoystandin.Config{
		Filter: &extprocfilterv3.ExternalProcessor{MessageTimeout: durationpb.New(5 * time.Second)},
	})
	res, err := sim.Do(context.Background(), envoystandin.Request{Authority: "api.example.com"}, envoystandin.Upstream{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d x-tenant=%q\n", res.Status, res.UpstreamRequest.Headers.Get("x-tenant"))
	// Output: 200 x-tenant=""
}
