// Package group turns calls from many goroutines into batches (group
// commit): while one batch is being written, the calls that arrive queue,
// and the next batch takes them all (up to Max). A lone call is written at
// once, alone; under load a batch forms by itself, with no timer and no
// added latency.
package group

import "sync"

// Group batches calls of Do. The zero value is not usable: set Do.
type Group[Req, Resp any] struct {
	// Max bounds a batch. Default 1,000.
	Max int
	// Do writes one batch and returns one answer per request, in order, or
	// an error for the whole batch. It runs on one goroutine at a time.
	Do func(reqs []Req) ([]Resp, error)

	mu    sync.Mutex
	queue []*call[Req, Resp]
	busy  bool
}

type call[Req, Resp any] struct {
	req  Req
	resp Resp
	err  error
	done chan struct{}
}

// Call queues req and waits for its batch to be written. It always waits
// for the outcome (Do must bound its own time): a caller that gave up
// could not know whether its request was written.
func (g *Group[Req, Resp]) Call(req Req) (Resp, error) {
	c := &call[Req, Resp]{req: req, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if !g.busy {
		g.busy = true
		go g.run()
	}
	g.mu.Unlock()
	<-c.done
	return c.resp, c.err
}

func (g *Group[Req, Resp]) run() {
	limit := g.Max
	if limit <= 0 {
		limit = 1000
	}
	for {
		g.mu.Lock()
		n := min(len(g.queue), limit)
		if n == 0 {
			g.busy = false
			g.mu.Unlock()
			return
		}
		batch := make([]*call[Req, Resp], n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()
		reqs := make([]Req, n)
		for i, c := range batch {
			reqs[i] = c.req
		}
		resps, err := g.Do(reqs)
		if err == nil && len(resps) != n {
			panic("group: Do returned a different number of answers than requests")
		}
		for i, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.resp = resps[i]
			}
			close(c.done)
		}
	}
}
