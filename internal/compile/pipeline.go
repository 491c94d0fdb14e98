package compile

import (
	"github.com/corsgate/corsgate/api/v1alpha1"
	"github.com/corsgate/corsgate/internal/table"
)

// Pipeline is the step both policy sources share once they have read their
// objects: build one table from all of them, let the source accept or refuse
// it, swap it into the store, and report. The sources differ only in how they
// read objects (files; the informer cache), when they refuse a table (the
// file source refuses a broken start-up; the Kubernetes source a failed read
// of Gateway API objects), and what they do with the results (logs; status).
// Each source then calls its OnServe hook, once it has recorded the results.
//
//	files ─┐
//	       ├─▶ Pipeline.Publish: Build → accept → Store.Swap
//	kube  ─┘
type Pipeline struct {
	Builder *Builder
	Store   *table.Store
}

// NewPipeline returns a Pipeline with a fresh Builder that serves into store.
func NewPipeline(store *table.Store) *Pipeline {
	return &Pipeline{Builder: NewBuilder(), Store: store}
}

// Publish builds a table from objs. When accept (which may be nil) returns
// an error, the table is not served, the store keeps the last one, and the
// error is returned; otherwise the table is swapped in. The results are
// returned either way, for the source to report.
func (p *Pipeline) Publish(objs []v1alpha1.CorsPolicy, accept func(*table.Table, []Result) error) (*table.Table, []Result, error) {
	t, results := p.Builder.Build(objs)
	if accept != nil {
		if err := accept(t, results); err != nil {
			return t, results, err
		}
	}
	p.Store.Swap(t)
	return t, results, nil
}
