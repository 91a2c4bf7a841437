package pump

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

type loaded struct {
	class     messages.Class
	tasks     []task.Record
	exhausted bool
	err       error
}

// Deps are the pump actor's collaborators.
type Deps struct {
	Store  store.Store
	Dedupe *actor.PID
	Intake *actor.PID
	Logger *slog.Logger
	Now    func() time.Time
	// Standby is told the standby count after each change; intake reads it
	// for admission control.
	Standby func(total int64, perClass [messages.NumClasses]int64)
	// Classified is told how many durable tasks the pump has placed (fast
	// path or standby), after Standby shows them: intake counts tasks as
	// waiting until then, so none is ever uncounted.
	Classified func(n int)
}

type shell struct {
	m      *Machine
	d      Deps
	timer  actorio.Timer
	last   int64
	self   *actor.PID
	system *actor.ActorSystem
}

// Props returns the pump actor.
func Props(cfg Config, capacity [messages.NumClasses]int, maxID uint64, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{m: New(cfg, capacity, maxID), d: d, last: -1} })
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	var fx Effects
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		fx = s.m.Start(now)
	case task.Persisted:
		s.apply(ctx, s.m.Persisted(now, msg.Tasks))
		if s.d.Classified != nil {
			s.d.Classified(len(msg.Tasks))
		}
	case task.Credit:
		for c, n := range msg.N {
			if n > 0 {
				s.apply(ctx, s.m.Credit(now, messages.Class(c), n))
			}
		}
	case tick:
		s.timer.Clear()
		fx = s.m.Tick(now)
	case loaded:
		if msg.err != nil {
			s.d.Logger.Error("standby refill failed", "class", msg.class.String(), "err", msg.err)
			msg.tasks, msg.exhausted = nil, false // retried on the next tick
		}
		fx = s.m.Loaded(now, msg.class, msg.tasks, msg.exhausted)
	case *actor.Stopping:
		s.timer.Stop()
	}
	s.apply(ctx, fx)
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	if len(fx.Forward) > 0 {
		ctx.Send(s.d.Dedupe, task.Forward{Tasks: fx.Forward})
	}
	for _, l := range fx.Loads {
		go s.load(l)
	}
	if fx.Tick > 0 {
		s.timer.Arm(s.system, s.self, fx.Tick, tick{})
	}
	if n := s.m.Standby(); n != s.last {
		s.last = n
		if s.d.Standby != nil {
			var per [messages.NumClasses]int64
			for c := range per {
				per[c] = s.m.ClassStandby(messages.Class(c))
			}
			s.d.Standby(n, per)
		}
	}
}

func (s *shell) load(l Load) {
	tasks, err := s.d.Store.Pending(context.Background(), l.Class, l.After, l.Limit)
	s.system.Root.Send(s.self, loaded{class: l.Class, tasks: tasks, exhausted: err == nil && len(tasks) < l.Limit, err: err})
}
