package executor

import (
	"context"
	"sync"
)

// taskCtx is the context a handler gets: the executor's base context
// (values, shutdown) plus the task's own cancellation (a revoke). It does
// what context.WithCancel(base) did, for less: WithCancel allocated a
// cancelCtx and registered it in the base's children under the base's lock,
// then removed it, on every task, which cost about 5% of a W1 node's CPU
// (most handlers never look at Done). Here the Done channel, and the
// watch on the base context, are made only when a handler asks for Done.
//
// Difference from WithCancel: context.Cause of a revoked task's context is
// the base's cause (nil while the executor runs), not context.Canceled; Err
// is context.Canceled as before.
type taskCtx struct {
	context.Context // the executor's base

	mu   sync.Mutex
	done chan struct{} // made on the first Done
	err  error         // set by cancel
	stop func() bool   // stops the watch on the base
}

func newTaskCtx(base context.Context) *taskCtx { return &taskCtx{Context: base} }

// Done is closed when the task is revoked or the executor shuts down.
func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		} else {
			base := c.Context
			c.stop = context.AfterFunc(base, func() { c.cancel(base.Err()) })
		}
	}
	return c.done
}

// Err is context.Canceled once revoked, else the base's error.
func (c *taskCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.Context.Err()
}

// cancel revokes the task (err: context.Canceled) or passes the base's end
// on; the first call wins.
func (c *taskCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	stop := c.stop
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// release ends the task's context once its handler returned (as WithCancel's
// cancel did): a goroutine the handler left behind sees it canceled.
func (c *taskCtx) release() { c.cancel(context.Canceled) }
