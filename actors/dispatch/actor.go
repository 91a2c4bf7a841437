package dispatch

import (
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/dedupe"
	"github.com/shoalrt/shoal/actors/pump"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
)

// Snapshot is the dispatcher's view, for status.
type Snapshot struct {
	Queued    [messages.NumClasses]int
	Leases    int
	Executors []messages.ExecutorStatus
	Counters  Counters
	// FreeSlots, Types and AnyType describe the executors for a stealer.
	FreeSlots int
	Types     []string
	AnyType   bool
	// Unplaceable lists the requirement shapes no registered executor
	// satisfies (status, and demand for the cloud actor).
	Unplaceable []Unplaceable
}

// SnapshotRequest asks the dispatcher for a Snapshot (answered to the sender).
type SnapshotRequest struct{}

// StateRequest asks where tasks are (answered with []messages.TaskState).
type StateRequest struct{ IDs []uint64 }

// ReasonRequest asks why tasks cannot progress (answered with []string, ""
// where nothing is wrong).
type ReasonRequest struct{ IDs []uint64 }

type tick struct{}

// Evict asks the dispatcher to forget an executor and requeue its leases
// at once (Machine.Evict). Sent by the supervisor.
type Evict struct{ Executor, Reason string }

// EvictAddress evicts every executor whose replies go to Address (a
// process whose connection was lost: its remote endpoint terminated).
type EvictAddress struct{ Address, Reason string }

// SetState makes an executor active, sleeping or draining
// (Machine.SetState). Answered with a StateResult when sent as a request.
type SetState struct{ Executor, State string }

// StateResult answers SetState.
type StateResult struct{ Err error }

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
	// (StolenResults).
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
	case dedupe.Enqueue:
		s.apply(ctx, s.m.Enqueue(now, msg.Tasks))
	case EnqueueStolen:
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
	case Evict:
		s.logEvict(msg.Executor, msg.Reason)
		s.apply(ctx, s.m.Evict(now, msg.Executor, msg.Reason))
		delete(s.pids, msg.Executor)
	case EvictAddress:
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
	case SetState:
		fx, err := s.m.SetState(now, msg.Executor, msg.State)
		s.apply(ctx, fx)
		if err == nil {
			s.d.Logger.Info("executor state", "executor", msg.Executor, "state", msg.State)
		}
		if ctx.Sender() != nil {
			ctx.Respond(StateResult{Err: err})
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
	case dedupe.CancelQueued:
		s.apply(ctx, s.m.Cancel(now, msg.IDs))
	case tick:
		s.apply(ctx, s.m.Tick(now))
		for id := range s.pids {
			if !s.m.Known(id) {
				delete(s.pids, id)
			}
		}
		s.timer.Arm(s.system, s.self, s.d.TickEvery, tick{})
	case SnapshotRequest:
		var snap Snapshot
		for c := range snap.Queued {
			snap.Queued[c] = s.m.QueueLen(messages.Class(c))
		}
		snap.Leases, snap.Executors, snap.Counters = s.m.Leases(), s.m.Executors(), s.m.Counters
		snap.FreeSlots = s.m.FreeSlots()
		snap.Types, snap.AnyType = s.m.Types()
		snap.Unplaceable = s.m.Unplaceable()
		ctx.Respond(snap)
	case ReasonRequest:
		out := make([]string, len(msg.IDs))
		for i, id := range msg.IDs {
			out[i] = s.m.Reason(id)
		}
		ctx.Respond(out)
	case StateRequest:
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
		ctx.Send(s.d.Dedupe, dedupe.Finished{Results: fx.Finished})
	}
	if len(fx.Stolen) > 0 && s.d.Stealer != nil {
		ctx.Send(s.d.Stealer, StolenResults{Results: fx.Stolen})
	}
	if fx.Credit != ([messages.NumClasses]int{}) {
		ctx.Send(s.d.Pump, pump.Credit{N: fx.Credit})
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
