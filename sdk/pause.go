package sdk

import (
	"context"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Pause holds task types and priority classes ("high", "normal", "low")
// back from dispatch on the node: their tasks stay durable and queued and
// none is granted until Resume. Leases already granted run on. The paused
// set is durable on the node (it survives a restart); Pause returns it
// after the change. In a cluster each node holds its own set: pause every
// member (docs/operations.md).
func (c *Client) Pause(ctx context.Context, types, classes []string) (*messages.PauseAck, error) {
	return c.pause(ctx, &messages.Pause{Types: types, Classes: classes})
}

// Resume lets paused task types and classes be granted again and returns
// the paused set after the change.
func (c *Client) Resume(ctx context.Context, types, classes []string) (*messages.PauseAck, error) {
	return c.pause(ctx, &messages.Pause{Types: types, Classes: classes, Resume: true})
}

func (c *Client) pause(ctx context.Context, p *messages.Pause) (*messages.PauseAck, error) {
	res, err := c.ask(ctx, messages.ActorDispatch, p)
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
