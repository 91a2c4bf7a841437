package flow

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/wire"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
)

// ExecutorID is the flow runner's executor id at the dispatcher.
const ExecutorID = "shoal-flows"

// Completed carries durable results to the runner (the node forwards every
// batch the result hub receives).
type Completed struct{ Results []store.ResultRecord }

// Stats are the runner's counters, readable from any goroutine.
type Stats struct {
	Active, Started, Done, Failed, Cancelled           atomic.Int64
	StepsSubmitted, StepsRun, StepsShared, StepsFailed atomic.Int64
}

// Deps are the flow actor's collaborators.
type Deps struct {
	Store     store.Store
	Intake    *actor.PID
	Dispatch  *actor.PID
	Dedupe    *actor.PID
	Registry  *Registry
	Transport wire.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Token is the node's executor token (the runner registers like any
	// executor).
	Token string
	// Stats, when set, mirrors the counters.
	Stats *Stats
}

type submitted struct {
	seq uint64
	ack *messages.SubmitAck
}

type lookedUp struct{ results []store.ResultRecord }

type heartbeat struct{}

type flushLater struct{}

type shell struct {
	cfg    Config
	m      *Machine
	d      Deps
	self   *actor.PID
	system *actor.ActorSystem
	hb     wire.Timer
	retry  wire.Timer
	every  time.Duration
	// registered: a Pull is outstanding once the dispatcher accepted us.
	registered bool
	reports    []messages.Result
}

// Props returns the flow actor: the runner of flow tasks and the answerer
// of template and flow requests.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{cfg: cfg, m: New(cfg), d: d} })
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.register(ctx)
	case *messages.Registered:
		if msg.Err != nil {
			s.d.Logger.Error("flow runner refused by the dispatcher", "err", msg.Err)
			return
		}
		s.every = max(time.Duration(msg.HeartbeatMillis)*time.Millisecond, 10*time.Millisecond)
		s.hb.Arm(s.system, s.self, s.every, heartbeat{})
		s.registered = true
		s.pull(ctx)
	case *messages.Grant:
		if msg.Err != nil {
			// The dispatcher forgot us (we were silent past the lease TTL):
			// it requeued our flows and will grant them again.
			s.d.Logger.Warn("flow runner lost its registration; registering again", "err", msg.Err, "flows", s.m.Active())
			s.m.Reset()
			s.registered = false
			s.register(ctx)
			return
		}
		s.apply(ctx, s.m.Revoked(msg.Cancel))
		s.apply(ctx, s.m.Grant(now, msg.Tasks))
		s.flush(ctx)
		s.pull(ctx)
	case Completed:
		s.apply(ctx, s.m.Completed(msg.Results))
		s.flush(ctx)
	case lookedUp:
		s.apply(ctx, s.m.Completed(msg.results))
		s.flush(ctx)
	case submitted:
		var ids []uint64
		var err *messages.Error
		if msg.ack != nil {
			ids, err = msg.ack.IDs, msg.ack.Err
		} else {
			err = messages.Errorf(messages.CodeUnavailable, "intake did not answer")
		}
		s.apply(ctx, s.m.Submitted(msg.seq, ids, err))
		s.flush(ctx)
	case flushLater:
		s.retry.Clear()
		s.flush(ctx)
	case heartbeat:
		s.hb.Clear()
		if s.registered {
			s.d.Transport.Request(ctx, s.d.Dispatch, &messages.Heartbeat{ExecutorID: ExecutorID, Held: s.m.Held(), Results: s.takeReports()})
		}
		s.hb.Arm(s.system, s.self, s.every, heartbeat{})
	case *messages.RegisterTemplate:
		s.registerTemplate(ctx, msg)
	case *messages.ListTemplates:
		s.reply(ctx.Sender(), &messages.TemplateList{Templates: s.d.Registry.List(msg.All)})
	case *messages.RunFlows:
		s.runFlows(ctx, msg)
	case *messages.FlowGet:
		s.get(ctx, msg)
	case *actor.Stopping:
		s.hb.Stop()
		s.retry.Stop()
	}
	s.sendReports(ctx)
	s.stats()
}

func (s *shell) register(ctx actor.Context) {
	s.d.Transport.Request(ctx, s.d.Dispatch, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: ExecutorID,
		Types: []string{messages.FlowTaskType}, Slots: int32(s.cfg.MaxActive / 2), Token: s.d.Token})
}

// pull keeps one Pull outstanding: the dispatcher answers it with flows to
// run or with flows cancelled (long poll).
func (s *shell) pull(ctx actor.Context) {
	free := max(int32(s.cfg.MaxActive-s.m.Active()), 0)
	s.d.Transport.Request(ctx, s.d.Dispatch, &messages.Pull{ExecutorID: ExecutorID, Free: free, Results: s.takeReports()})
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	s.reports = append(s.reports, fx.Reports...)
	if len(fx.Cancel) > 0 {
		s.d.Transport.Send(ctx, s.d.Dedupe, &messages.Cancel{IDs: fx.Cancel})
	}
	if len(fx.Lookup) > 0 {
		s.lookup(fx.Lookup)
	}
	if fx.RetryLater && !s.retry.Armed() {
		s.retry.Arm(s.system, s.self, 50*time.Millisecond, flushLater{})
	}
}

// sendReports reports finished flows at once (a Heartbeat carries them;
// the outstanding Pull stays parked).
func (s *shell) sendReports(ctx actor.Context) {
	if len(s.reports) > 0 && s.registered {
		s.d.Transport.Request(ctx, s.d.Dispatch, &messages.Heartbeat{ExecutorID: ExecutorID, Results: s.takeReports()})
	}
}

func (s *shell) takeReports() []messages.Result {
	r := s.reports
	s.reports = nil
	return r
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
		var out []store.ResultRecord
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
