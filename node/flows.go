package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/flow"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// NameFlows is the flow actor's name (messages.ActorFlows).
const NameFlows = messages.ActorFlows

// nameFlowRouter stands between dedupe and the dispatcher: flow tasks go
// to the flow runner, the rest to the dispatcher.
const nameFlowRouter = "shoal-flow-router"

type flowParts struct {
	registry *flow.Registry
	stats    flow.Stats
}

// spawnFlows loads the template directory and spawns the flow runner and
// the router that hands it flow tasks.
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
	return errors.Join(
		spawn(flow.Props(cfg, flow.Deps{Store: n.store, Intake: n.pids.Intake, Dedupe: n.pids.Dedupe, Pump: actor.NewPID(n.system.Address(), namePump),
			Registry: n.flows.registry, Transport: tr, Logger: n.cfg.Logger, Now: n.cfg.Now, Stats: &n.flows.stats}), NameFlows),
		spawn(flow.Router(n.pids.Dispatch, n.pids.Flows), nameFlowRouter))
}

// completed counts durable results and forwards them to the flow runner,
// which follows the steps of its flows. With no flow running nothing waits
// for a step result (a flow starts, and submits its first steps, within one
// message of the runner, which then counts it as running; a step result
// that comes before the runner learns the step's id is read back from the
// store), so other work costs the runner nothing.
func (n *Node) completed(rs []task.Result) {
	n.count(rs)
	if n.flows.stats.Active.Load() > 0 {
		n.system.Root.Send(n.pids.Flows, flow.Completed{Results: rs})
	}
}

func (n *Node) flowCounters(c map[string]int64) {
	s := &n.flows.stats
	c["flows_running"] = s.Active.Load()
	c["flows_waiting"] = s.Waiting.Load()
	c["flows_done"] = s.Done.Load()
	c["flows_failed"] = s.Failed.Load()
	c["flows_cancelled"] = s.Cancelled.Load()
	c["flow_steps_submitted"] = s.StepsSubmitted.Load()
	c["flow_steps_run"] = s.StepsRun.Load()
	c["flow_steps_shared"] = s.StepsShared.Load()
}

// FlowStats are the flow runner's live counters.
func (n *Node) FlowStats() *flow.Stats { return &n.flows.stats }

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
