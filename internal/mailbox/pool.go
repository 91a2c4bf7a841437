// Package mailbox holds a protoactor dispatcher that runs mailboxes on a
// pool of long-lived goroutines.
//
// protoactor's default dispatcher starts a fresh goroutine every time an
// idle mailbox receives a message. A fresh goroutine starts with a small
// stack, and shoal's actors (codec middleware, shell, state machine, maps)
// grow it by copying several times on every such start: in a three-node
// W1 run, runtime.newstack/copystack took about a tenth of the nodes' CPU.
// Pool keeps up to a bounded number of goroutines parked between mailbox
// runs, so their stacks stay grown; when none is idle it starts a goroutine
// as the default dispatcher does, so a mailbox is never delayed behind
// another and a blocking actor cannot starve the pool.
package mailbox

import (
	"sync"
	"sync/atomic"
)

// DefaultThroughput is protoactor's default (messages a mailbox processes
// before it yields).
const DefaultThroughput = 300

// DefaultIdle is how many goroutines Pool keeps parked at most.
const DefaultIdle = 32

// Pool is an actor.Dispatcher. Create it with NewPool, give it to props with
// actor.WithDispatcher, and Close it once the actors using it have stopped.
type Pool struct {
	throughput int
	maxIdle    int32
	work       chan func()
	stop       chan struct{}
	parked     atomic.Int32 // goroutines in the pool (parked or running)
	mu         sync.Mutex   // guards closed and wg.Add against Close
	closed     bool
	wg         sync.WaitGroup
}

// NewPool returns a dispatcher keeping at most maxIdle goroutines (0:
// DefaultIdle) whose mailboxes process throughput messages (0:
// DefaultThroughput) before yielding.
func NewPool(throughput, maxIdle int) *Pool {
	if throughput <= 0 {
		throughput = DefaultThroughput
	}
	if maxIdle <= 0 {
		maxIdle = DefaultIdle
	}
	return &Pool{throughput: throughput, maxIdle: int32(maxIdle), work: make(chan func()), stop: make(chan struct{})}
}

// Schedule runs fn on a parked goroutine, or on a new one when none is
// parked (it never waits).
func (p *Pool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.run(fn)
	}
}

// Throughput is the mailbox batch size.
func (p *Pool) Throughput() int { return p.throughput }

func (p *Pool) run(fn func()) {
	fn()
	if p.parked.Add(1) > p.maxIdle {
		p.parked.Add(-1)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.parked.Add(-1)
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	defer p.parked.Add(-1)
	for {
		select {
		case fn := <-p.work:
			fn()
		case <-p.stop:
			return
		}
	}
}

// Close lets the parked goroutines exit and waits for them (a mailbox run in
// progress finishes first). Schedule still works afterwards, on fresh
// goroutines, so a late message to a stopping actor is not lost.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
