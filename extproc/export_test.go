package extproc

import "google.golang.org/grpc"

// ProcessWire opens the wire path to the benchmarks of package extproc_test.
func (s *Server) ProcessWire(stream grpc.ServerStream) error { return s.processWire(stream) }
