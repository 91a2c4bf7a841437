package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// commitQueue is what both stores' group commit share: the FIFO of queued
// writes, the committer's wake-up, and the store's open/closed state with
// the count of running calls that Close waits for. R is the store's request
// type.
type commitQueue[R queuedReq] struct {
	mu       sync.Mutex
	queue    []R // FIFO of requests waiting for the committer
	closed   bool
	inflight int           // public calls running; Close waits for them
	idle     sync.Cond     // on mu: inflight dropped to 0
	wake     chan struct{} // cap 1: something was queued, or closed
}

// queuedReq is a queued write: its state (reqQueued, reqTaken,
// reqWithdrawn) and its size in bytes for MaxGroupBytes.
type queuedReq interface {
	comparable
	reqState() *atomic.Int32
	reqSize() int
}

func (q *commitQueue[R]) init() {
	q.idle.L = &q.mu
	q.wake = make(chan struct{}, 1)
}

// acquire registers a running call; it fails once Close has begun.
func (q *commitQueue[R]) acquire() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	q.inflight++
	return nil
}

func (q *commitQueue[R]) release() {
	q.mu.Lock()
	q.inflight--
	if q.inflight == 0 && q.closed {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

// signal wakes the committer without blocking.
func (q *commitQueue[R]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// enqueue appends r and wakes the committer.
func (q *commitQueue[R]) enqueue(r R) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.queue = append(q.queue, r)
	q.mu.Unlock()
	q.signal()
	return nil
}

// shut marks the store closed (later calls get ErrClosed) and wakes the
// committer so that it drains the queue and stops. It returns ErrClosed if
// the store was closed already.
func (q *commitQueue[R]) shut() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	q.mu.Unlock()
	q.signal()
	return nil
}

// waitIdle waits until no call is running (after shut).
func (q *commitQueue[R]) waitIdle() {
	q.mu.Lock()
	for q.inflight > 0 {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// take blocks until requests are queued and moves the next group (in queue
// order, bounded by maxBytes; a single larger request goes alone) into
// group, skipping withdrawn requests. It returns false once the store is
// closed and the queue is drained.
func (q *commitQueue[R]) take(group []R, maxBytes int) ([]R, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 {
		if q.closed {
			return group, false
		}
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	n, size := 0, 0
	for ; n < len(q.queue); n++ {
		r := q.queue[n]
		if r.reqState().Load() == reqWithdrawn {
			continue // its caller gave up and released it already
		}
		if len(group) > 0 && size+r.reqSize() > maxBytes {
			break
		}
		if !r.reqState().CompareAndSwap(reqQueued, reqTaken) {
			continue // withdrawn just now
		}
		size += r.reqSize()
		group = append(group, r)
	}
	rest := copy(q.queue, q.queue[n:])
	clear(q.queue[rest:])
	q.queue = q.queue[:rest]
	return group, true
}

// awaitCommit waits for a queued request's outcome. If ctx ends while the
// request is still queued, it withdraws it (withdrawn runs, nothing is
// written) and returns ctx.Err(); once the committer took it, the outcome
// is near and awaited.
func awaitCommit(ctx context.Context, state *atomic.Int32, done <-chan error, withdrawn func()) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if state.CompareAndSwap(reqQueued, reqWithdrawn) {
			if withdrawn != nil {
				withdrawn()
			}
			return ctx.Err()
		}
		return <-done
	}
}
