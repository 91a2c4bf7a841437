package dedupe

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

type tick struct{}

type flushResults struct{}

type persisted struct {
	recs []task.Result
	err  error
}

// Deps are the dedupe actor's collaborators.
type Deps struct {
	Store     store.Store
	Dispatch  *actor.PID
	Pump      *actor.PID
	Results   *actor.PID
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Seed lists results within the window found at start-up.
	Seed []task.Result
	// FlushDelay batches result writes: results wait up to this long (or
	// until FlushMax are pending) before one commit makes them durable. Each
	// fsync costs CPU on small machines; a few milliseconds of result
	// latency buys far fewer of them when tasks finish one by one. Results
	// are announced to waiters only once durable. Default 2 ms.
	FlushDelay time.Duration
	// FlushMax flushes at once when this many results wait. Default 2,048.
	FlushMax int
}

type shell struct {
	m       *Machine
	d       Deps
	timer   actorio.Timer
	flush   actorio.Timer
	pending []task.Result // results waiting for the next flush
	self    *actor.PID
	system  *actor.ActorSystem
}

// Props returns the dedupe actor.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		m := New(cfg)
		for _, r := range d.Seed {
			m.Seed(r)
		}
		d.Seed = nil
		if d.FlushDelay <= 0 {
			d.FlushDelay = 2 * time.Millisecond
		}
		if d.FlushMax <= 0 {
			d.FlushMax = 2048
		}
		return &shell{m: m, d: d}
	})
}

const evictEvery = time.Second

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.timer.Arm(s.system, s.self, evictEvery, tick{})
	case task.Forward:
		s.apply(ctx, s.m.Tasks(now, msg.Tasks))
	case task.Finished:
		s.apply(ctx, s.m.Finished(now, msg.Results))
	case task.DedupeStateRequest:
		out := make([]messages.TaskState, len(msg.IDs))
		for i, id := range msg.IDs {
			switch attached, live := s.m.State(id); {
			case attached:
				out[i] = messages.StateAttached
			case live:
				out[i] = messages.StateQueued
			default:
				out[i] = messages.StateStandby
			}
		}
		ctx.Respond(out)
	case *messages.Cancel:
		s.cancel(ctx, now, msg)
	case persisted:
		if msg.err != nil {
			// The results stay pending in the store: after a restart the
			// tasks run again (at least once). Nothing is acknowledged as done.
			s.d.Logger.Error("result commit failed", "results", len(msg.recs), "err", msg.err)
			return
		}
		ctx.Send(s.d.Results, task.Completed{Results: msg.recs})
	case flushResults:
		s.flush.Clear()
		s.flushPending()
	case tick:
		s.m.Tick(now)
		s.timer.Arm(s.system, s.self, evictEvery, tick{})
	case *actor.Stopping:
		s.timer.Stop()
		s.flush.Stop()
		s.flushPending()
	}
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	if len(fx.Dispatch) > 0 {
		ctx.Send(s.d.Dispatch, task.Enqueue{Tasks: fx.Dispatch})
	}
	if fx.Credit != ([messages.NumClasses]int{}) {
		ctx.Send(s.d.Pump, task.Credit{N: fx.Credit})
	}
	if len(fx.Cancel) > 0 {
		ctx.Send(s.d.Dispatch, task.CancelQueued{IDs: fx.Cancel})
	}
	if len(fx.Persist) > 0 {
		s.pending = append(s.pending, fx.Persist...)
		if len(s.pending) >= s.d.FlushMax {
			s.flush.Stop()
			s.flushPending()
		} else if !s.flush.Armed() {
			s.flush.Arm(s.system, s.self, s.d.FlushDelay, flushResults{})
		}
	}
}

func (s *shell) flushPending() {
	if len(s.pending) > 0 {
		s.persist(s.pending, nil)
		s.pending = nil
	}
}

// persist commits results; done (optional) runs after the commit.
func (s *shell) persist(recs []task.Result, done func(error)) {
	root, self := s.system.Root, s.self
	store.Then(s.d.Store, &store.Batch{Results: recs}, func(err error) {
		root.Send(self, persisted{recs: recs, err: err})
		if done != nil {
			done(err)
		}
	})
}

// cancel answers a client's Cancel. Live tasks are cancelled here or through
// the dispatcher (asynchronously: Wait shows the final state). Tasks this
// actor has not seen are looked up: a standby task is cancelled durably now.
func (s *shell) cancel(ctx actor.Context, now time.Time, msg *messages.Cancel) {
	sender := ctx.Sender()
	unknown, fx := s.m.Cancel(now, msg.IDs)
	s.apply(ctx, fx)
	out := &messages.Outcomes{}
	isUnknown := make(map[uint64]bool, len(unknown))
	for _, id := range unknown {
		isUnknown[id] = true
	}
	var standby []task.Result
	bg := context.Background()
	for _, id := range msg.IDs {
		if !isUnknown[id] {
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateCancelled})
			continue
		}
		if r, ok, err := s.d.Store.Result(bg, id); err == nil && ok {
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: r.State, Attempts: r.Attempts})
			continue
		}
		t, ok, err := s.d.Store.Task(bg, id)
		if err != nil || !ok {
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateUnknown, Error: "no such task"})
			continue
		}
		s.m.Drop(id)
		standby = append(standby, task.Result{ID: id, Class: t.Class, Digest: t.Digest, State: messages.StateCancelled, Attempts: t.Attempts, FinishedAt: now.UnixNano()})
		out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateCancelled})
	}
	reply := func(err error) {
		if err != nil {
			out.Err = messages.Errorf(messages.CodeUnavailable, "cancel not recorded: %v", err)
		}
		if sender != nil {
			s.d.Transport.Send(s.system.Root, sender, out)
		}
	}
	if len(standby) == 0 {
		reply(nil)
		return
	}
	s.persist(standby, reply)
}
