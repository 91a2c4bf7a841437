package flow

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// StatsRequest asks the runner for its Stats (answered to the sender).
type StatsRequest struct{}

// Stats are the runner's counters: the flows running and waiting for a
// running place now, and the cumulative counts.
type Stats struct {
	Active, Waiting int64
	Counters
}

// Deps are the flow actor's collaborators.
type Deps struct {
	Store  store.Store
	Intake *actor.PID
	// Queue is the node's queue: it hands the runner flow tasks and takes
	// back their results, freed places and step cancels.
	Queue *actor.PID
	// Results, when set, is told task.FlowsActive whenever the runner goes
	// from no running flow to some, or back: only then does it forward
	// durable results here.
	Results   *actor.PID
	Registry  *Registry
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
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
	active bool // what Results was last told
}

// Props returns the flow actor: the runner of flow tasks and the answerer
// of template and flow requests. It receives flow tasks from the queue.
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
	case task.Completed: // from the result hub, while flows run
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
	case StatsRequest:
		ctx.Respond(Stats{Active: int64(s.m.Active()), Waiting: int64(s.m.Waiting()), Counters: s.m.Counters})
	case *actor.Stopping:
		s.retry.Stop()
		return
	default:
		return
	}
	s.tellActive(ctx) // before flush: the hub hears before any step is submitted
	s.flush(ctx)
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	if fx.Credit != ([messages.NumClasses]int{}) {
		ctx.Send(s.d.Queue, task.Credit{N: fx.Credit})
	}
	if len(fx.Finished) > 0 {
		ctx.Send(s.d.Queue, task.Finished{Results: fx.Finished})
	}
	if len(fx.Cancel) > 0 {
		ctx.Send(s.d.Queue, &messages.Cancel{IDs: fx.Cancel})
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

// tellActive tells the result hub when the runner starts or stops holding
// running flows. A step result that reaches the hub before it hears is read
// back from the store (the machine asks for a Lookup), so none is lost.
func (s *shell) tellActive(ctx actor.Context) {
	if active := s.m.Active() > 0; active != s.active && s.d.Results != nil {
		s.active = active
		ctx.Send(s.d.Results, task.FlowsActive{Active: active})
	}
}

func (s *shell) reply(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}
