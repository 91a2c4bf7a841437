package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/flow"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// NameFlows is the flow actor's name (messages.ActorFlows).
const NameFlows = messages.ActorFlows

type flowParts struct {
	registry *flow.Registry
}

// spawnFlows loads the template directory and spawns the flow runner; the
// queue hands it flow tasks.
func (n *Node) spawnFlows(tr actorio.Transport, spawn func(*actor.Props, string) error) error {
	cfg := n.cfg.Flows
	cfg.Classes = flow.Classes{HighMin: n.cfg.Intake.HighMin, LowMax: n.cfg.Intake.LowMax}
	cfg.MaxBatch = min(cfg.MaxBatch, n.cfg.Intake.MaxBatch)
	if cfg.Compile.MaxAttempts == 0 {
		cfg.Compile.MaxAttempts = n.cfg.Intake.MaxAttempts
	}
	n.flows.registry = flow.NewRegistry(cfg.Compile)
	if cfg.TemplateDir != "" {
		plans, err := n.flows.registry.LoadDir(cfg.TemplateDir)
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		for _, p := range plans {
			n.cfg.Logger.Info("flow template loaded", "template", p.Spec.Name, "version", p.Version, "steps", len(p.Steps))
		}
	}
	return spawn(flow.Props(cfg, flow.Deps{Store: n.store, Intake: n.pids.Intake, Queue: n.pids.Dispatch, Results: n.pids.Results,
		Registry: n.flows.registry, Transport: tr, Logger: n.cfg.Logger, Now: n.cfg.Now}), NameFlows)
}

func (n *Node) flowCounters(ctx context.Context, c map[string]int64) {
	s, err := n.FlowStats(ctx)
	if err != nil {
		n.cfg.Logger.Warn("status: flow runner did not answer", "err", err)
		return
	}
	c["flows_running"] = s.Active
	c["flows_waiting"] = s.Waiting
	c["flows_done"] = s.Done
	c["flows_failed"] = s.Failed
	c["flows_cancelled"] = s.Cancelled
	c["flow_steps_submitted"] = s.StepsSubmitted
	c["flow_steps_run"] = s.StepsRun
	c["flow_steps_shared"] = s.StepsShared
}

// FlowStats asks the flow runner for its counters.
func (n *Node) FlowStats(ctx context.Context) (flow.Stats, error) {
	res, err := n.system.Root.RequestFuture(n.pids.Flows, flow.StatsRequest{}, timeoutOf(ctx)).Result()
	if err != nil {
		return flow.Stats{}, fmt.Errorf("node: flow stats: %w", err)
	}
	return res.(flow.Stats), nil
}

// Flows is the node's in-process flow API (what an HTTP front end calls).
// Every method answers with the same typed errors as the wire API.
type Flows struct{ n *Node }

// Flows returns the node's flow API.
func (n *Node) Flows() Flows { return Flows{n} }

func (f Flows) ask(ctx context.Context, msg any) (any, error) {
	res, err := f.n.system.Root.RequestFuture(f.n.pids.Flows, msg, timeoutOf(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("node: flow actor did not answer: %w", messages.ErrUnavailable)
	}
	return res, nil
}

// RegisterTemplate registers a template from its YAML or JSON text.
func (f Flows) RegisterTemplate(ctx context.Context, spec []byte) (messages.TemplateInfo, error) {
	res, err := f.ask(ctx, &messages.RegisterTemplate{Version: messages.ProtocolVersion, Spec: spec})
	if err != nil {
		return messages.TemplateInfo{}, err
	}
	ack := res.(*messages.TemplateAck)
	if ack.Err != nil {
		return messages.TemplateInfo{}, ack.Err
	}
	return ack.Template, nil
}

// Templates lists the templates: the latest version of each, or every
// kept version with all.
func (f Flows) Templates(all bool) []messages.TemplateInfo { return f.n.flows.registry.List(all) }

// Run starts flows (all or none) and returns their ids once durable.
func (f Flows) Run(ctx context.Context, flows ...messages.FlowSpec) ([]uint64, error) {
	res, err := f.ask(ctx, &messages.RunFlows{Version: messages.ProtocolVersion, Flows: slices.Clone(flows)})
	if err != nil {
		return nil, err
	}
	ack := res.(*messages.RunFlowsAck)
	if ack.Err != nil {
		return nil, ack.Err
	}
	return ack.IDs, nil
}

// Get returns a flow's outcome and, while it runs, its steps.
func (f Flows) Get(ctx context.Context, id uint64) (*messages.FlowStatus, error) {
	res, err := f.ask(ctx, &messages.FlowGet{ID: id})
	if err != nil {
		return nil, err
	}
	st := res.(*messages.FlowStatus)
	if st.Err != nil {
		return st, st.Err
	}
	return st, nil
}

// Cancel cancels a flow: its task is cancelled and the runner cancels its
// unfinished steps (a step shared with other flows goes on for them).
func (f Flows) Cancel(ctx context.Context, id uint64) (messages.Outcome, error) {
	res, err := f.n.system.Root.RequestFuture(f.n.pids.Dedupe, &messages.Cancel{IDs: []uint64{id}}, timeoutOf(ctx)).Result()
	if err != nil {
		return messages.Outcome{}, fmt.Errorf("node: cancel did not answer: %w", messages.ErrUnavailable)
	}
	out := res.(*messages.Outcomes)
	if out.Err != nil {
		return messages.Outcome{}, out.Err
	}
	if len(out.Outcomes) != 1 {
		return messages.Outcome{}, fmt.Errorf("node: cancel answered %d outcomes", len(out.Outcomes))
	}
	return out.Outcomes[0], nil
}

// Wait blocks until the flow is finished (done, dead or cancelled) or ctx
// ends; the outcome's Output is the flow's assembled result (JSON).
func (f Flows) Wait(ctx context.Context, id uint64) (messages.Outcome, error) {
	for {
		step := timeoutOf(ctx)
		res, err := f.n.system.Root.RequestFuture(f.n.pids.Results, &messages.Wait{IDs: []uint64{id}, TimeoutMillis: max(step.Milliseconds()-100, 1)}, step).Result()
		if err != nil {
			if ctx.Err() != nil {
				return messages.Outcome{}, ctx.Err()
			}
			return messages.Outcome{}, fmt.Errorf("node: wait did not answer: %w", messages.ErrUnavailable)
		}
		out := res.(*messages.Outcomes)
		if out.Err == nil && len(out.Outcomes) == 1 {
			return out.Outcomes[0], nil
		}
		if out.Err != nil && out.Err.Code != messages.CodeTimeout {
			return messages.Outcome{}, out.Err
		}
		if ctx.Err() != nil {
			return messages.Outcome{}, ctx.Err()
		}
	}
}
