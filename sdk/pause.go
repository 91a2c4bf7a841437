package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Pause holds task types and priority classes ("high", "normal", "low")
// back from dispatch on the node: their tasks stay durable and queued and
// none is granted until Resume. Leases already granted run on. The paused
// set is durable on the node (it survives a restart); Pause returns it
// after the change. In a cluster the request goes to every member the
// node's status lists (each holds its own set, docs/operations.md); the
// answer is the connected node's, and an error names the members that
// refused or did not answer.
func (c *Client) Pause(ctx context.Context, types, classes []string) (*messages.PauseAck, error) {
	return c.pause(ctx, &messages.Pause{Types: types, Classes: classes})
}

// Resume lets paused task types and classes be granted again and returns
// the paused set after the change.
func (c *Client) Resume(ctx context.Context, types, classes []string) (*messages.PauseAck, error) {
	return c.pause(ctx, &messages.Pause{Types: types, Classes: classes, Resume: true})
}

func (c *Client) pause(ctx context.Context, p *messages.Pause) (*messages.PauseAck, error) {
	ack, err := c.pauseAt(ctx, c.conn.Node, p)
	if err != nil {
		return ack, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return ack, fmt.Errorf("sdk: pause: applied on %s, but its status (the cluster's members) could not be read: %w", c.conn.Node, err)
	}
	var errs []error
	for _, m := range st.Members {
		if m.Remote == "" || m.Remote == c.conn.Node || m.Name == st.Node {
			continue
		}
		if _, err := c.pauseAt(ctx, m.Remote, p); err != nil {
			errs = append(errs, fmt.Errorf("member %s (%s): %w", m.Name, m.Remote, err))
		}
	}
	if len(errs) > 0 {
		return ack, fmt.Errorf("sdk: pause: applied on %s but not on every member: %w", st.Node, errors.Join(errs...))
	}
	return ack, nil
}

func (c *Client) pauseAt(ctx context.Context, node string, p *messages.Pause) (*messages.PauseAck, error) {
	res, err := c.askAt(ctx, node, messages.ActorDispatch, p)
	if err != nil {
		return nil, err
	}
	ack, ok := res.(*messages.PauseAck)
	if !ok {
		return nil, fmt.Errorf("sdk: pause: unexpected answer %T", res)
	}
	if ack.Err != nil {
		return ack, ack.Err
	}
	return ack, nil
}
