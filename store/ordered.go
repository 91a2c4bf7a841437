package store

import "context"

// Ordered runs a callback for each queued commit, in queue order, on one
// goroutine. Intake needs this: ids are assigned in order and the pump relies
// on learning about durable tasks in that same order.
type Ordered struct {
	ch   chan orderedItem
	done chan struct{}
}

type orderedItem struct {
	res <-chan error
	fn  func(error)
}

// AsyncCommitter is a Store that can queue a commit without waiting for it.
type AsyncCommitter interface {
	CommitAsync(ctx context.Context, b *Batch) <-chan error
}

// NewOrdered starts the callback goroutine; depth bounds the commits in
// flight (a full queue makes Commit wait: backpressure, not loss).
func NewOrdered(depth int) *Ordered {
	o := &Ordered{ch: make(chan orderedItem, depth), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for it := range o.ch {
			it.fn(<-it.res)
		}
	}()
	return o
}

// Commit queues b on s now and calls fn with its outcome after every earlier
// commit's fn has run.
func (o *Ordered) Commit(s AsyncCommitter, b *Batch, fn func(error)) {
	o.ch <- orderedItem{res: s.CommitAsync(context.Background(), b), fn: fn}
}

// Close waits for the queued callbacks; no Commit may follow.
func (o *Ordered) Close() {
	close(o.ch)
	<-o.done
}

// Then queues b on s and calls fn with its outcome on a new goroutine, for
// commits whose callbacks need no order.
func Then(s AsyncCommitter, b *Batch, fn func(error)) {
	res := s.CommitAsync(context.Background(), b)
	go func() { fn(<-res) }()
}
