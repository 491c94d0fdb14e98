package extproc_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any goroutine outlives the tests: every
// stream handler, health Watch, idle-stream timer and Runner must end when
// its stream, connection or context does. Nothing is ignored: the tests
// close every client connection and stop every server they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
