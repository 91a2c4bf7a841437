package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
)

// Client submits tasks and waits for their results.
type Client struct {
	conn *Conn
	// Timeout bounds one request when ctx has no deadline. Default 30 s.
	Timeout time.Duration
	owners  *owners // set when conn.RouteToOwners: see owners.go
}

// NewClient returns a client over conn. With conn.RouteToOwners it sends
// each task to its partition's owner and Wait and Cancel to each id's
// holder (owners.go).
func NewClient(conn *Conn) *Client {
	c := &Client{conn: conn, Timeout: 30 * time.Second}
	if conn.RouteToOwners {
		c.owners = &owners{}
	}
	return c
}

// Task is what a client submits (an alias of the wire type).
type Task = messages.TaskSpec

// Outcome is a task's state and result.
type Outcome = messages.Outcome

// Submit submits one task and returns its id once it is durable.
func (c *Client) Submit(ctx context.Context, t Task) (uint64, error) {
	ids, err := c.SubmitBatch(ctx, []Task{t})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// SubmitBatch submits tasks atomically (all or none) and returns their ids
// once all are durable. Overload is reported as messages.ErrOverloaded.
// In a cluster a batch whose tasks have several owners is atomic per owner
// only (as at a node's router): an owner refusing its part (overload, down)
// fails the call although other owners' parts are durable; resubmitting is
// safe (the duplicates attach to the durable tasks).
func (c *Client) SubmitBatch(ctx context.Context, tasks []Task) ([]uint64, error) {
	sub := &messages.Submit{Version: messages.ProtocolVersion, Tasks: tasks}
	var ack *messages.SubmitAck
	if c.owners != nil {
		ack, _ = c.submitRouted(ctx, sub)
	}
	if ack == nil {
		res, err := c.ask(ctx, messages.ActorIntake, sub)
		if err != nil {
			return nil, err
		}
		var ok bool
		if ack, ok = res.(*messages.SubmitAck); !ok {
			return nil, fmt.Errorf("sdk: submit: unexpected answer %T", res)
		}
	}
	if ack.Err != nil {
		return nil, ack.Err
	}
	if len(ack.IDs) != len(tasks) {
		return nil, fmt.Errorf("sdk: submit: node acknowledged %d of %d tasks", len(ack.IDs), len(tasks))
	}
	return ack.IDs, nil
}

// Wait blocks until every task is terminal (done, dead or cancelled) or ctx
// ends, and returns their outcomes in the order asked. Unknown ids come back
// with StateUnknown. When ctx ends first it returns the last states it saw
// (where each task waits: standby, queued, leased, failed, attached) with
// ctx's error: context.DeadlineExceeded when its deadline passed, whatever
// the node was doing (a request outstanding at the deadline is not
// "unavailable").
func (c *Client) Wait(ctx context.Context, ids ...uint64) ([]Outcome, error) {
	var last []Outcome
	for {
		step := 10 * time.Second
		d, hasDeadline := ctx.Deadline()
		if hasDeadline {
			step = min(step, time.Until(d))
		}
		if step <= 0 || last != nil && step < minWaitRound {
			// Too little time left for the node to answer another round
			// before the deadline: its answer would go to a client that has
			// left. What we saw last is the answer.
			<-ctx.Done()
			return last, deadlineErr(ctx)
		}
		// The node answers with what it knows at its timeout; leave the
		// answer time to arrive before ctx ends.
		server := max(step-200*time.Millisecond, step/2)
		out, err := c.outcomes(ctx, messages.ActorResults, ids, func(ids []uint64) any {
			return &messages.Wait{IDs: ids, TimeoutMillis: server.Milliseconds()}
		})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return last, deadlineErr(ctx)
			}
			return nil, err
		}
		if out.Err == nil {
			return out.Outcomes, nil
		}
		if !errors.Is(out.Err, messages.ErrTimeout) {
			return nil, out.Err
		}
		last = out.Outcomes
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
	}
}

// minWaitRound is the shortest Wait round worth asking the node for once
// Wait has an answer: shorter, the answer would arrive after the deadline.
const minWaitRound = 100 * time.Millisecond

// deadlineErr is ctx's error once its deadline has passed, which may be a
// moment before ctx itself says so.
func deadlineErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// Result waits for one task.
func (c *Client) Result(ctx context.Context, id uint64) (Outcome, error) {
	out, err := c.Wait(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	return out[0], nil
}

// Cancel cancels tasks. Queued and standby tasks are cancelled at once; a
// running task's lease is revoked (its handler's context is cancelled) and
// its result discarded. Wait shows the final state.
func (c *Client) Cancel(ctx context.Context, ids ...uint64) ([]Outcome, error) {
	out, err := c.outcomes(ctx, messages.ActorDedupe, ids, func(ids []uint64) any { return &messages.Cancel{IDs: ids} })
	if err != nil {
		return nil, err
	}
	if out.Err != nil {
		return out.Outcomes, out.Err
	}
	return out.Outcomes, nil
}

// Status returns the node's queues, executors and counters.
func (c *Client) Status(ctx context.Context) (*messages.Status, error) {
	res, err := c.ask(ctx, messages.ActorStatus, &messages.StatusRequest{})
	if err != nil {
		return nil, err
	}
	st, ok := res.(*messages.Status)
	if !ok {
		return nil, fmt.Errorf("sdk: status: unexpected answer %T", res)
	}
	return st, nil
}

// outcomes asks name (results: Wait, dedupe: Cancel) about ids: at each
// holder when routing, else at the dialled node.
func (c *Client) outcomes(ctx context.Context, name string, ids []uint64, mk func([]uint64) any) (*messages.Outcomes, error) {
	if c.owners != nil {
		if out, ok := c.outcomesRouted(ctx, name, ids, mk); ok {
			return out, nil
		}
	}
	res, err := c.ask(ctx, name, mk(ids))
	if err != nil {
		return nil, err
	}
	out, ok := res.(*messages.Outcomes)
	if !ok {
		return nil, fmt.Errorf("sdk: %s: unexpected answer %T", name, res)
	}
	return out, nil
}

func (c *Client) ask(ctx context.Context, name string, msg any) (any, error) {
	return c.askAt(ctx, c.conn.Node, name, msg)
}

// askAt asks the actor name of the node at address node.
func (c *Client) askAt(ctx context.Context, node, name string, msg any) (any, error) {
	f, err := c.requestAt(ctx, node, name, msg)
	if err != nil {
		return nil, err
	}
	return c.result(ctx, f, name)
}

// requestAt sends a request and returns its future (several may be in
// flight at once: one per owner or holder).
func (c *Client) requestAt(ctx context.Context, node, name string, msg any) (*actor.Future, error) {
	timeout := c.Timeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	wire, err := c.conn.Wrap(msg)
	if err != nil {
		return nil, err
	}
	return c.conn.System.Root.RequestFuture(actor.NewPID(node, name), wire, timeout), nil
}

// result waits for a request's answer, or until ctx ends.
func (c *Client) result(ctx context.Context, f *actor.Future, name string) (any, error) {
	return c.resultUnless(ctx, f, name, nil)
}

// resultUnless is result that also gives up, checking every ViewEvery,
// once gone reports that the node asked is no longer a cluster member
// (nil: never).
func (c *Client) resultUnless(ctx context.Context, f *actor.Future, name string, gone func() bool) (any, error) {
	type answer struct {
		res any
		err error
	}
	ch := make(chan answer, 1)
	go func() { // ends when the future does: at the latest at its timeout
		res, err := f.Result()
		ch <- answer{res, err}
	}()
	var tick <-chan time.Time
	if gone != nil {
		t := time.NewTicker(ViewEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case a := <-ch:
			if a.err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The future's timeout is ctx's deadline (requestAt): it can
				// fire a moment before ctx reports it.
				if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
					return nil, context.DeadlineExceeded
				}
				return nil, fmt.Errorf("sdk: %s did not answer: %w", name, messages.ErrUnavailable)
			}
			return c.conn.Unwrap(a.res)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick:
			if gone() {
				return nil, fmt.Errorf("sdk: %s: the node left the cluster before it answered: %w", name, messages.ErrUnavailable)
			}
		}
	}
}

// Drain stops the node granting work to an executor and lets its leases
// finish (undo: make it active again). It returns the executor's state and
// leases; an unknown executor is messages.ErrNotFound.
func (c *Client) Drain(ctx context.Context, executorID string, undo bool) (*messages.DrainAck, error) {
	res, err := c.ask(ctx, messages.ActorDispatch, &messages.Drain{ExecutorID: executorID, Undo: undo})
	if err != nil {
		return nil, err
	}
	ack, ok := res.(*messages.DrainAck)
	if !ok {
		return nil, fmt.Errorf("sdk: drain: unexpected answer %T", res)
	}
	if ack.Err != nil {
		return ack, ack.Err
	}
	return ack, nil
}
