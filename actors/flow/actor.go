package flow

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Completed carries durable results to the runner (the node forwards every
// batch the result hub receives).
type Completed struct{ Results []task.Result }

// Stats are the runner's counters, readable from any goroutine.
type Stats struct {
	Active, Waiting, Started, Done, Failed, Cancelled  atomic.Int64
	StepsSubmitted, StepsRun, StepsShared, StepsFailed atomic.Int64
}

// Deps are the flow actor's collaborators.
type Deps struct {
	Store     store.Store
	Intake    *actor.PID
	Dedupe    *actor.PID
	Pump      *actor.PID
	Registry  *Registry
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Stats, when set, mirrors the counters.
	Stats *Stats
}

type submitted struct {
	seq uint64
	ack *messages.SubmitAck
}

type lookedUp struct{ results []task.Result }

type flushLater struct{}

type shell struct {
	cfg    Config
	m      *Machine
	d      Deps
	self   *actor.PID
	system *actor.ActorSystem
	retry  actorio.Timer
}

// Props returns the flow actor: the runner of flow tasks and the answerer
// of template and flow requests. It receives flow tasks from dedupe through
// the Router.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{cfg: cfg, m: New(cfg), d: d} })
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
	case task.Enqueue:
		s.apply(ctx, s.m.Enqueue(now, msg.Tasks))
	case task.CancelQueued:
		s.apply(ctx, s.m.Cancel(now, msg.IDs))
	case Completed:
		s.apply(ctx, s.m.Completed(now, msg.Results))
	case lookedUp:
		s.apply(ctx, s.m.Completed(now, msg.results))
	case submitted:
		var ids []uint64
		var err *messages.Error
		if msg.ack != nil {
			ids, err = msg.ack.IDs, msg.ack.Err
		} else {
			err = messages.Errorf(messages.CodeUnavailable, "intake did not answer")
		}
		s.apply(ctx, s.m.Submitted(now, msg.seq, ids, err))
	case flushLater:
		s.retry.Clear()
	case *messages.RegisterTemplate:
		s.registerTemplate(ctx, msg)
	case *messages.ListTemplates:
		s.reply(ctx.Sender(), &messages.TemplateList{Templates: s.d.Registry.List(msg.All)})
	case *messages.RunFlows:
		s.runFlows(ctx, msg)
	case *messages.FlowGet:
		s.get(ctx, msg)
	case *actor.Stopping:
		s.retry.Stop()
		return
	default:
		return
	}
	s.flush(ctx)
	s.stats()
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	if fx.Credit != ([messages.NumClasses]int{}) {
		ctx.Send(s.d.Pump, task.Credit{N: fx.Credit})
	}
	if len(fx.Finished) > 0 {
		ctx.Send(s.d.Dedupe, task.Finished{Results: fx.Finished})
	}
	if len(fx.Cancel) > 0 {
		ctx.Send(s.d.Dedupe, &messages.Cancel{IDs: fx.Cancel})
	}
	if len(fx.Lookup) > 0 {
		s.lookup(fx.Lookup)
	}
	if fx.RetryLater && !s.retry.Armed() {
		s.retry.Arm(s.system, s.self, 50*time.Millisecond, flushLater{})
	}
}

// flush submits ready steps; each Submit's acknowledgement comes back as a
// message (one future per batch of steps, never per step).
func (s *shell) flush(ctx actor.Context) {
	if s.retry.Armed() {
		return
	}
	for _, b := range s.m.Flush() {
		f := ctx.RequestFuture(s.d.Intake, &messages.Submit{Version: messages.ProtocolVersion, Tasks: b.Tasks}, time.Minute)
		seq, root, self := b.Seq, s.system.Root, s.self
		go func() {
			res, _ := f.Result()
			ack, _ := res.(*messages.SubmitAck)
			root.Send(self, submitted{seq: seq, ack: ack})
		}()
	}
}

// lookup reads results that may have become durable before the runner knew
// their task ids (off the actor; the answer is a message).
func (s *shell) lookup(ids []uint64) {
	st, root, self, log := s.d.Store, s.system.Root, s.self, s.d.Logger
	go func() {
		var out []task.Result
		for _, id := range ids {
			r, ok, err := st.Result(context.Background(), id)
			if err != nil {
				log.Error("flow step result lookup failed", "task_id", id, "err", err)
				continue
			}
			if ok {
				out = append(out, r)
			}
		}
		if len(out) > 0 {
			root.Send(self, lookedUp{results: out})
		}
	}()
}

func (s *shell) stats() {
	st := s.d.Stats
	if st == nil {
		return
	}
	c := &s.m.Counters
	st.Active.Store(int64(s.m.Active()))
	st.Waiting.Store(int64(s.m.Waiting()))
	st.Started.Store(c.Started)
	st.Done.Store(c.Done)
	st.Failed.Store(c.Failed)
	st.Cancelled.Store(c.Cancelled)
	st.StepsSubmitted.Store(c.StepsSubmitted)
	st.StepsRun.Store(c.StepsRun)
	st.StepsShared.Store(c.StepsShared)
	st.StepsFailed.Store(c.StepsFailed)
}

func (s *shell) reply(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}

// Router stands between dedupe and the dispatcher: flow tasks go to the
// flow runner, every other task to the dispatcher; cancels go to both
// (each ignores ids it does not hold).
func Router(dispatch, runner *actor.PID) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch msg := ctx.Message().(type) {
		case task.Enqueue:
			flows := 0
			for i := range msg.Tasks {
				if msg.Tasks[i].Type == messages.FlowTaskType {
					flows++
				}
			}
			if flows == 0 {
				ctx.Send(dispatch, msg)
				return
			}
			if flows == len(msg.Tasks) {
				ctx.Send(runner, msg)
				return
			}
			var f, o []task.Record
			for _, t := range msg.Tasks {
				if t.Type == messages.FlowTaskType {
					f = append(f, t)
				} else {
					o = append(o, t)
				}
			}
			ctx.Send(dispatch, task.Enqueue{Tasks: o})
			ctx.Send(runner, task.Enqueue{Tasks: f})
		case task.CancelQueued:
			ctx.Send(dispatch, msg)
			ctx.Send(runner, msg)
		}
	})
}
