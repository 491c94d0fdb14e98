package lint

import (
	"errors"

	"github.com/corsgate/corsgate/internal/filesource"
)

// loadFile reads one file with the server's loader (filesource.LoadFile),
// which reports every problem of every document, not only the first, each
// with its document, object, field and fix.
func loadFile(file string) ([]filesource.Object, []Problem) {
	objs, err := filesource.LoadFile(file)
	var out []Problem
	for _, e := range splitErrors(err) {
		var de *filesource.DocError
		if !errors.As(e, &de) {
			out = append(out, Problem{File: file, Severity: Error, Message: e.Error()})
			continue
		}
		p := Problem{File: file, Document: de.Document, Object: de.Object, Field: de.Field, Severity: Error, Message: de.Message, Fix: de.Fix}
		if de.Item >= 0 {
			item := de.Item
			p.Item = &item
		}
		out = append(out, p)
	}
	return objs, out
}
