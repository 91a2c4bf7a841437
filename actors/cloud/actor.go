package cloud

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// StatusRequest asks the cloud actor for its Status (answered to the sender).
type StatusRequest struct{}

// Status is the cloud actor's view, for `shoal status` and the demo.
type Status struct {
	Provider  string
	Executors []messages.CloudExecutorStatus
	Counters  Counters
	Active    int
}

// Deps are the cloud actor's collaborators.
type Deps struct {
	Dispatch *actor.PID
	Provider Provider
	Logger   *slog.Logger
	Now      func() time.Time
	// Prefix starts the executor ids (the node's name).
	Prefix string
}

type (
	tick        struct{}
	provisioned struct {
		id, handle string
		err        error
	}
	released struct {
		id  string
		err error
	}
)

type shell struct {
	m      *Machine
	cfg    Config
	d      Deps
	timer  actorio.Timer
	self   *actor.PID
	system *actor.ActorSystem
	calls  sync.WaitGroup
	stop   context.CancelFunc
	ctx    context.Context
	// stopping: provisions that complete now release their executor
	// themselves (the actor will not read their answer).
	stopping atomic.Bool
}

// Props returns the cloud actor.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		ctx, cancel := context.WithCancel(context.Background())
		return &shell{m: New(cfg, d.Prefix), cfg: cfg, d: d, ctx: ctx, stop: cancel}
	})
}

func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.d.Logger.Info("cloud spill on", "provider", s.d.Provider.Name(), "max_executors", s.cfg.MaxExecutors,
			"max_per_hour", s.cfg.MaxPerHour, "grace", s.cfg.Grace, "idle", s.cfg.Idle, "capabilities", s.cfg.Capabilities)
		s.timer.Arm(s.system, s.self, s.cfg.Every, tick{})
	case tick:
		s.timer.Clear()
		ctx.Request(s.d.Dispatch, task.SnapshotRequest{})
		s.timer.Arm(s.system, s.self, s.cfg.Every, tick{})
	case task.Snapshot:
		queued := 0
		for _, q := range msg.Queued {
			queued += q
		}
		s.apply(s.m.Observe(s.d.Now(), Observation{Unplaceable: msg.Unplaceable, Queued: queued, FreeSlots: msg.FreeSlots, Executors: msg.Executors}))
	case provisioned:
		if msg.err == nil {
			s.d.Logger.Info("cloud executor started", "executor", msg.id, "handle", msg.handle)
		}
		s.apply(s.m.Provisioned(msg.id, msg.handle, msg.err))
	case released:
		s.apply(s.m.Released(msg.id, msg.err))
	case StatusRequest:
		ctx.Respond(Status{Provider: s.d.Provider.Name(), Executors: s.m.Status(), Counters: s.m.Counters, Active: s.m.Active()})
	case *actor.Stopping:
		s.timer.Stop()
		s.stopping.Store(true)
		// Give every executor back before the node goes: release what is
		// known, and let provisions in flight finish and release theirs.
		s.apply(s.m.ReleaseAll())
		done := make(chan struct{})
		go func() { s.calls.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			s.d.Logger.Warn("cloud: provider calls still running at stop")
		}
		s.stop()
	}
}

func (s *shell) apply(fx Effects) {
	for _, n := range fx.Notes {
		if n.Info {
			s.d.Logger.Info(n.Msg, n.Args...)
		} else {
			s.d.Logger.Warn(n.Msg, n.Args...)
		}
	}
	for _, p := range fx.Provisions {
		s.d.Logger.Info("cloud executor provisioning", "executor", p.Req.ID, "provider", s.d.Provider.Name(), "reason", p.Req.Reason)
		req := p.Req
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProvisionTimeout)
			defer cancel()
			h, err := s.d.Provider.Provision(ctx, req)
			if s.stopping.Load() { // the actor is going: release here
				if err == nil {
					rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
					if err := s.d.Provider.Release(rctx, req.ID, h); err != nil {
						s.d.Logger.Warn("cloud release failed", "executor", req.ID, "err", err)
					} else {
						s.d.Logger.Info("cloud executor released", "executor", req.ID, "reason", "node stopping")
					}
					rcancel()
				}
				return
			}
			s.system.Root.Send(s.self, provisioned{req.ID, h, err})
		}()
	}
	for _, id := range fx.Drains {
		s.system.Root.Send(s.d.Dispatch, task.SetState{Executor: id, State: messages.ExecDraining})
	}
	for _, r := range fx.Releases {
		s.d.Logger.Info("cloud executor releasing", "executor", r.ID, "reason", r.Reason)
		r := r
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := s.d.Provider.Release(ctx, r.ID, r.Handle)
			if err == nil { // logged here: at stop the actor reads no more answers
				s.d.Logger.Info("cloud executor released", "executor", r.ID)
			}
			s.system.Root.Send(s.self, released{r.ID, err})
		}()
	}
}
