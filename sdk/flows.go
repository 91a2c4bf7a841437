package sdk

import (
	"context"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Flow is a flow to start (an alias of the wire type): a template name
// (and version, 0 for the latest), a JSON input and an optional priority.
type Flow = messages.FlowSpec

// RegisterTemplate registers a flow template from its YAML or JSON text and
// returns the version the node assigned (the same text again keeps its
// version).
func (c *Client) RegisterTemplate(ctx context.Context, spec []byte) (messages.TemplateInfo, error) {
	res, err := c.ask(ctx, messages.ActorFlows, &messages.RegisterTemplate{Version: messages.ProtocolVersion, Spec: spec})
	if err != nil {
		return messages.TemplateInfo{}, err
	}
	ack, ok := res.(*messages.TemplateAck)
	if !ok {
		return messages.TemplateInfo{}, fmt.Errorf("sdk: register template: unexpected answer %T", res)
	}
	if ack.Err != nil {
		return messages.TemplateInfo{}, ack.Err
	}
	return ack.Template, nil
}

// Templates lists the node's flow templates (the latest version of each, or
// every kept version with all).
func (c *Client) Templates(ctx context.Context, all bool) ([]messages.TemplateInfo, error) {
	res, err := c.ask(ctx, messages.ActorFlows, &messages.ListTemplates{All: all})
	if err != nil {
		return nil, err
	}
	l, ok := res.(*messages.TemplateList)
	if !ok {
		return nil, fmt.Errorf("sdk: templates: unexpected answer %T", res)
	}
	if l.Err != nil {
		return nil, l.Err
	}
	return l.Templates, nil
}

// RunFlow starts one flow and returns its id once it is durable.
func (c *Client) RunFlow(ctx context.Context, f Flow) (uint64, error) {
	ids, err := c.RunFlows(ctx, []Flow{f})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// RunFlows starts flows atomically (all or none). An invalid flow (unknown
// template, bad input) refuses the batch with an error naming its index.
func (c *Client) RunFlows(ctx context.Context, flows []Flow) ([]uint64, error) {
	res, err := c.ask(ctx, messages.ActorFlows, &messages.RunFlows{Version: messages.ProtocolVersion, Flows: flows})
	if err != nil {
		return nil, err
	}
	ack, ok := res.(*messages.RunFlowsAck)
	if !ok {
		return nil, fmt.Errorf("sdk: run flows: unexpected answer %T", res)
	}
	if ack.Err != nil {
		return nil, ack.Err
	}
	if len(ack.IDs) != len(flows) {
		return nil, fmt.Errorf("sdk: run flows: node acknowledged %d of %d flows", len(ack.IDs), len(flows))
	}
	return ack.IDs, nil
}

// WaitFlow waits for flows like Wait: each outcome's Output is the flow's
// assembled result (JSON), or its Error names the step that failed it.
func (c *Client) WaitFlow(ctx context.Context, ids ...uint64) ([]Outcome, error) {
	return c.Wait(ctx, ids...)
}

// GetFlow returns a flow's outcome and, while it runs, its steps.
func (c *Client) GetFlow(ctx context.Context, id uint64) (*messages.FlowStatus, error) {
	res, err := c.ask(ctx, messages.ActorFlows, &messages.FlowGet{ID: id})
	if err != nil {
		return nil, err
	}
	st, ok := res.(*messages.FlowStatus)
	if !ok {
		return nil, fmt.Errorf("sdk: get flow: unexpected answer %T", res)
	}
	if st.Err != nil {
		return st, st.Err
	}
	return st, nil
}

// CancelFlow cancels flows: each flow task is cancelled and its unfinished
// steps with it (a step shared with other flows goes on for them).
func (c *Client) CancelFlow(ctx context.Context, ids ...uint64) ([]Outcome, error) {
	return c.Cancel(ctx, ids...)
}
