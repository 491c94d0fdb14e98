package table

import (
	"sync"
	"sync/atomic"
)

// Store holds the table being served. Readers Load once per HTTP exchange;
// writers Swap in a whole new table. The zero value is ready to use.
type Store struct {
	cur   atomic.Pointer[Table]
	once  sync.Once
	ready chan struct{}
	init  sync.Once
}

func (s *Store) readyChan() chan struct{} {
	s.init.Do(func() { s.ready = make(chan struct{}) })
	return s.ready
}

// Load returns the current table, or nil before the first Swap.
func (s *Store) Load() *Table { return s.cur.Load() }

// Swap makes t the current table.
func (s *Store) Swap(t *Table) {
	s.cur.Store(t)
	ready := s.readyChan()
	s.once.Do(func() { close(ready) })
}

// Ready is closed once the first table is in place.
func (s *Store) Ready() <-chan struct{} { return s.readyChan() }
