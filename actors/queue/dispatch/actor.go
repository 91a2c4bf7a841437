package dispatch

import (
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

type tick struct{}

// Deps are the dispatcher actor's collaborators.
type Deps struct {
	Store     store.Store
	Dedupe    *actor.PID
	Pump      *actor.PID
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Authorize checks an executor's token; nil accepts every executor.
	Authorize func(token string) bool
	// Stealer, when set, receives the results of stolen tasks
	// (task.StolenResults).
	Stealer *actor.PID
	// TickEvery is how often leases and retries are checked. Default 100 ms.
	TickEvery time.Duration
}

type shell struct {
	m      *Machine
	d      Deps
	pids   map[string]*actor.PID
	timer  actorio.Timer
	self   *actor.PID
	system *actor.ActorSystem
}

// Props returns the dispatcher actor.
func Props(cfg Config, d Deps) *actor.Props {
	if d.TickEvery <= 0 {
		d.TickEvery = 100 * time.Millisecond
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &shell{m: New(cfg), d: d, pids: map[string]*actor.PID{}}
	})
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.timer.Arm(s.system, s.self, s.d.TickEvery, tick{})
	case task.Enqueue:
		s.apply(ctx, s.m.Enqueue(now, msg.Tasks))
	case task.EnqueueStolen:
		s.apply(ctx, s.m.EnqueueStolen(now, msg.Tasks))
	case *messages.Register:
		if s.d.Authorize != nil && !s.d.Authorize(msg.Token) {
			s.d.Logger.Warn("executor refused: bad token", "executor", msg.ExecutorID)
			s.reply(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeUnauthorized, "executor %q: missing or wrong token", msg.ExecutorID)})
			return
		}
		if msg.Version != messages.ProtocolVersion {
			s.reply(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", msg.Version, messages.ProtocolVersion)})
			return
		}
		if ctx.Sender() == nil || msg.ExecutorID == "" {
			s.reply(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeInvalid, "register needs an executor id and a sender")})
			return
		}
		s.pids[msg.ExecutorID] = ctx.Sender()
		s.d.Logger.Info("executor registered", "executor", msg.ExecutorID, "slots", msg.Slots, "types", msg.Types)
		s.apply(ctx, s.m.Register(now, msg))
	case *messages.Pull:
		s.learn(ctx, msg.ExecutorID)
		s.apply(ctx, s.m.Pull(now, msg))
	case *messages.Heartbeat:
		s.learn(ctx, msg.ExecutorID)
		s.apply(ctx, s.m.Heartbeat(now, msg))
	case task.Evict:
		s.logEvict(msg.Executor, msg.Reason)
		s.apply(ctx, s.m.Evict(now, msg.Executor, msg.Reason))
		delete(s.pids, msg.Executor)
	case task.EvictAddress:
		var ids []string
		for id, p := range s.pids {
			if p.Address == msg.Address {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			s.logEvict(id, msg.Reason)
			s.apply(ctx, s.m.Evict(now, id, msg.Reason))
			delete(s.pids, id)
		}
	case task.SetState:
		fx, err := s.m.SetState(now, msg.Executor, msg.State)
		s.apply(ctx, fx)
		if err == nil {
			s.d.Logger.Info("executor state", "executor", msg.Executor, "state", msg.State)
		}
		if ctx.Sender() != nil {
			ctx.Respond(task.StateResult{Err: err})
		}
	case *messages.Drain:
		state := messages.ExecDraining
		if msg.Undo {
			state = messages.ExecActive
		}
		fx, err := s.m.SetState(now, msg.ExecutorID, state)
		s.apply(ctx, fx)
		ack := &messages.DrainAck{}
		if err != nil {
			ack.Err = messages.AsError(err)
		} else {
			st, n := s.m.StateOf(msg.ExecutorID)
			ack.State, ack.Leases = st, int32(n)
			s.d.Logger.Info("executor state", "executor", msg.ExecutorID, "state", st)
		}
		s.reply(ctx.Sender(), ack)
	case task.CancelQueued:
		s.apply(ctx, s.m.Cancel(now, msg.IDs))
	case tick:
		s.apply(ctx, s.m.Tick(now))
		for id := range s.pids {
			if !s.m.Known(id) {
				delete(s.pids, id)
			}
		}
		s.timer.Arm(s.system, s.self, s.d.TickEvery, tick{})
	case task.SnapshotRequest:
		var snap task.Snapshot
		for c := range snap.Queued {
			snap.Queued[c] = s.m.QueueLen(messages.Class(c))
		}
		snap.Leases, snap.Executors, snap.Counters = s.m.Leases(), s.m.Executors(), s.m.Counters
		snap.FreeSlots = s.m.FreeSlots()
		snap.Types, snap.AnyType = s.m.Types()
		snap.Unplaceable = s.m.Unplaceable()
		ctx.Respond(snap)
	case task.ReasonRequest:
		out := make([]string, len(msg.IDs))
		for i, id := range msg.IDs {
			out[i] = s.m.Reason(id)
		}
		ctx.Respond(out)
	case task.StateRequest:
		out := make([]messages.TaskState, len(msg.IDs))
		for i, id := range msg.IDs {
			out[i] = s.m.State(id)
		}
		ctx.Respond(out)
	case *actor.Stopping:
		s.timer.Stop()
	}
}

// learn keeps the executor's reply address current (it may reconnect).
func (s *shell) learn(ctx actor.Context, id string) {
	if p := ctx.Sender(); p != nil {
		s.pids[id] = p
	}
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	for i := range fx.Grants {
		g := &fx.Grants[i]
		s.reply(s.pids[g.Executor], &g.Grant)
	}
	for _, r := range fx.Replies {
		to := s.pids[r.Executor]
		if to == nil {
			to = ctx.Sender()
		}
		s.reply(to, r.Msg)
	}
	if len(fx.Finished) > 0 {
		ctx.Send(s.d.Dedupe, task.Finished{Results: fx.Finished})
	}
	if len(fx.Stolen) > 0 && s.d.Stealer != nil {
		ctx.Send(s.d.Stealer, task.StolenResults{Results: fx.Stolen})
	}
	if fx.Credit != ([messages.NumClasses]int{}) {
		ctx.Send(s.d.Pump, task.Credit{N: fx.Credit})
	}
	if len(fx.Attempts) > 0 {
		n := len(fx.Attempts)
		log := s.d.Logger
		store.Then(s.d.Store, &store.Batch{Attempts: fx.Attempts}, func(err error) {
			if err != nil {
				log.Error("attempt count commit failed", "tasks", n, "err", err)
			}
		})
	}
}

func (s *shell) reply(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}

// logEvict logs an eviction: a warning when the executor held work, info
// when it held none (a drained executor that went away, a released cloud
// executor).
func (s *shell) logEvict(id, reason string) {
	if s.m.HeldBy(id) > 0 {
		s.d.Logger.Warn("executor evicted", "executor", id, "reason", reason, "leases", s.m.HeldBy(id))
		return
	}
	s.d.Logger.Info("executor evicted", "executor", id, "reason", reason)
}
