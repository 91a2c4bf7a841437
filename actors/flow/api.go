package flow

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
)

// MaxRunFlows bounds the flows of one RunFlows.
const MaxRunFlows = 10_000

// MaxRunFlowsBytes bounds the flow tasks one RunFlows builds (each carries
// its template and input).
const MaxRunFlowsBytes = 64 << 20

func (s *shell) registerTemplate(ctx actor.Context, msg *messages.RegisterTemplate) {
	if msg.Version != messages.ProtocolVersion {
		s.reply(ctx.Sender(), &messages.TemplateAck{Err: messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", msg.Version, messages.ProtocolVersion)})
		return
	}
	p, err := s.d.Registry.Register(msg.Spec)
	if err != nil {
		s.reply(ctx.Sender(), &messages.TemplateAck{Err: messages.AsError(err)})
		return
	}
	s.d.Logger.Info("flow template registered", "template", p.Spec.Name, "version", p.Version, "steps", len(p.Steps))
	s.reply(ctx.Sender(), &messages.TemplateAck{Template: p.Info()})
}

// BuildFlowTask turns a FlowSpec into its flow task: the template resolved
// in reg, the input normalised, the flow's priority on the task.
func BuildFlowTask(reg *Registry, cfg Config, f *messages.FlowSpec) (messages.TaskSpec, error) {
	p, err := reg.Get(f.Template, f.TemplateVersion)
	if err != nil {
		return messages.TaskSpec{}, err
	}
	in, _, err := p.NormalizeInput(f.Input)
	if err != nil {
		return messages.TaskSpec{}, err
	}
	prio := messages.DefaultPriority
	switch {
	case f.HasPriority:
		prio = f.Priority
	case p.Spec.Priority != nil:
		prio = *p.Spec.Priority
	}
	if prio < messages.MinPriority || prio > messages.MaxPriority {
		return messages.TaskSpec{}, messages.Errorf(messages.CodeBadPriority, "priority %d is outside [%d, %d]", prio, messages.MinPriority, messages.MaxPriority)
	}
	pl := Payload{Template: p.Spec.Name, Version: p.Version, Spec: p.Canonical, Input: in, Priority: prio}
	b, err := pl.Encode()
	if err != nil {
		return messages.TaskSpec{}, messages.Errorf(messages.CodeInvalid, "flow %s: %v", p.Spec.Name, err)
	}
	return messages.TaskSpec{Type: messages.FlowTaskType, Payload: b, Priority: prio}, nil
}

// runFlows validates every flow (all or none), then submits the flow tasks
// through intake and answers once they are durable.
func (s *shell) runFlows(ctx actor.Context, msg *messages.RunFlows) {
	sender := ctx.Sender()
	fail := func(e *messages.Error) { s.reply(sender, &messages.RunFlowsAck{Err: e}) }
	switch {
	case msg.Version != messages.ProtocolVersion:
		fail(messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", msg.Version, messages.ProtocolVersion))
		return
	case len(msg.Flows) == 0 || len(msg.Flows) > MaxRunFlows:
		fail(messages.Errorf(messages.CodeInvalid, "run needs 1 to %d flows, got %d", MaxRunFlows, len(msg.Flows)))
		return
	}
	if held := s.m.Active() + s.m.Waiting(); held+len(msg.Flows) > s.cfg.MaxFlows {
		fail(messages.Errorf(messages.CodeOverloaded, "%d flows are unfinished (limit %d); retry later", held, s.cfg.MaxFlows))
		return
	}
	tasks := make([]messages.TaskSpec, len(msg.Flows))
	total := 0
	for i := range msg.Flows {
		t, err := BuildFlowTask(s.d.Registry, s.cfg, &msg.Flows[i])
		if err != nil {
			e := *messages.AsError(err)
			e.Index = int32(i)
			fail(&e)
			return
		}
		tasks[i] = t
		// Every flow task carries its template: bound what one request
		// may make the node hold.
		if total += len(t.Payload); total > MaxRunFlowsBytes {
			fail(messages.Errorf(messages.CodeInvalid, "flows 0..%d already make %d bytes of flow tasks (limit %d); send fewer flows per request", i, total, MaxRunFlowsBytes))
			return
		}
	}
	f := ctx.RequestFuture(s.d.Intake, &messages.Submit{Version: messages.ProtocolVersion, Tasks: tasks}, time.Minute)
	go func() {
		res, err := f.Result()
		ack, ok := res.(*messages.SubmitAck)
		if err != nil || !ok {
			fail(messages.Errorf(messages.CodeUnavailable, "intake did not answer"))
			return
		}
		s.reply(sender, &messages.RunFlowsAck{IDs: ack.IDs, Err: ack.Err})
	}()
}

// get answers FlowGet: the steps of a flow the runner holds, and the flow
// task's durable outcome (read off the actor).
func (s *shell) get(ctx actor.Context, msg *messages.FlowGet) {
	sender := ctx.Sender()
	st := &messages.FlowStatus{ID: msg.ID, Outcome: messages.Outcome{TaskID: msg.ID, State: messages.StateUnknown}}
	live := false
	if steps, ok := s.m.Status(msg.ID); ok {
		// Running (with its steps) or waiting for a running place.
		st.Steps, st.Outcome.State, live = steps, messages.StateQueued, true
		if steps != nil {
			st.Outcome.State = messages.StateLeased
		}
	}
	st0 := s.d.Store
	go func() {
		bg := context.Background()
		t, ok, err := st0.Task(bg, msg.ID)
		switch {
		case err != nil:
			st.Err = messages.Errorf(messages.CodeUnavailable, "task store read failed: %v", err)
		case ok && t.Type != messages.FlowTaskType:
			st.Err = messages.Errorf(messages.CodeInvalid, "task %d is a %s task, not a flow", msg.ID, t.Type)
		case ok:
			if p, err := DecodePayload(t.Payload); err == nil {
				st.Template, st.TemplateVersion = p.Template, p.Version
			}
			if !live {
				st.Outcome.State = messages.StateQueued
			}
		}
		if st.Err == nil {
			if r, ok, err := st0.Result(bg, msg.ID); err == nil && ok {
				st.Outcome, st.Steps = r.Outcome(), nil
			} else if !ok && st.Outcome.State == messages.StateUnknown {
				st.Err = messages.Errorf(messages.CodeNotFound, "no flow %d (or its result expired)", msg.ID)
			}
		}
		s.reply(sender, st)
	}()
}
