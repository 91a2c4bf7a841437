package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Deps are the supervisor actor's collaborators.
type Deps struct {
	Dispatch *actor.PID // the node's dispatcher
	// Launcher starts the node's executor processes, one per Launch id.
	// Nil: the node launches none.
	Launcher Launcher
	Launch   []string
	// Sinks receive every alert besides the log.
	Sinks  []Sink
	Logger *slog.Logger
	Now    func() time.Time
}

// ViewRequest asks for the supervisor's View (answered to the sender).
type ViewRequest struct{}

// Spawn starts an in-process executor actor as the supervisor's child,
// restarted by protoactor's OneForOne strategy when it panics (escalated
// past MaxRestarts in the window). Answered with SpawnResult.
type Spawn struct {
	ID    string // executor id, also the child's name
	Props *actor.Props
}

// SpawnResult answers Spawn.
type SpawnResult struct {
	PID *actor.PID
	Err error
}

type tick struct{}

// running is a launched process; done closes when it has exited.
type running struct {
	p    Process
	done chan struct{}
}

type procExited struct {
	id  string
	r   *running // nil: it did not start
	err error
}

type shell struct {
	m        *Machine
	cfg      Config
	d        Deps
	timer    actorio.Timer
	self     *actor.PID
	system   *actor.ActorSystem
	procs    map[string]*running
	children map[string]string // child PID id → executor id
	sinks    sync.WaitGroup
	stopping bool
}

// Props returns the supervisor actor.
func Props(cfg Config, node string, d Deps) *actor.Props {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	st := &strategy{inner: actor.NewOneForOneStrategy(cfg.MaxRestarts+1, cfg.RestartWindow,
		func(any) actor.Directive { return actor.RestartDirective })}
	return actor.PropsFromProducer(func() actor.Actor {
		s := &shell{m: New(cfg, node), cfg: cfg, d: d, procs: map[string]*running{}, children: map[string]string{}}
		st.s = s
		return s
	}, actor.WithSupervisor(st))
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		if s.d.Launcher != nil {
			for _, id := range s.d.Launch {
				s.apply(ctx, s.m.Launch(now, id))
			}
		}
		s.timer.Arm(s.system, s.self, s.cfg.Interval, tick{})
	case tick:
		ctx.Request(s.d.Dispatch, task.SnapshotRequest{})
		s.timer.Arm(s.system, s.self, s.cfg.Interval, tick{})
	case task.Snapshot:
		s.apply(ctx, s.m.Observe(now, msg.Executors))
	case procExited:
		if msg.r != nil && s.procs[msg.id] == msg.r {
			delete(s.procs, msg.id)
		}
		reason := "exited"
		if msg.err != nil {
			reason = msg.err.Error()
		}
		if !s.stopping {
			s.d.Logger.Warn("executor process exited", "executor", msg.id, "reason", reason)
		}
		s.apply(ctx, s.m.Exited(now, msg.id, reason))
	case ViewRequest:
		ctx.Respond(s.m.View())
	case Spawn:
		pid, err := ctx.SpawnNamed(msg.Props, msg.ID)
		if err == nil {
			s.children[pid.Id] = msg.ID
			ctx.Watch(pid)
		}
		ctx.Respond(SpawnResult{PID: pid, Err: err})
	case *actor.Terminated:
		delete(s.children, msg.Who.Id)
	case *actor.Stopping:
		s.stop()
	}
}

// stop ends the launched processes: SIGTERM, SIGKILL after 5 s.
func (s *shell) stop() {
	s.stopping = true
	s.timer.Stop()
	s.m.Stop()
	for _, r := range s.procs {
		r.p.Terminate()
	}
	for id, r := range s.procs {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.p.Kill()
			<-r.done
		}
		s.d.Logger.Info("executor process stopped", "executor", id)
	}
	s.sinks.Wait()
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	for _, e := range fx.Evict {
		ctx.Send(s.d.Dispatch, task.Evict{Executor: e.Executor, Reason: e.Reason})
	}
	for _, id := range fx.Sleep {
		s.d.Logger.Info("executor put to sleep", "executor", id, "policy", s.cfg.SleepPolicy)
		ctx.Send(s.d.Dispatch, task.SetState{Executor: id, State: messages.ExecSleeping})
	}
	for _, id := range fx.Kill {
		if r := s.procs[id]; r != nil {
			s.d.Logger.Warn("killing unhealthy executor process", "executor", id, "pid", r.p.Pid())
			r.p.Kill()
		}
	}
	for _, id := range fx.Start {
		s.start(id)
	}
	for _, a := range fx.Alerts {
		s.alert(a)
	}
}

func (s *shell) start(id string) {
	if s.stopping {
		return
	}
	root, self := s.system.Root, s.self
	p, err := s.d.Launcher.Start(id)
	if err != nil {
		root.Send(self, procExited{id: id, err: err})
		return
	}
	r := &running{p: p, done: make(chan struct{})}
	s.procs[id] = r
	s.d.Logger.Info("executor process started", "executor", id, "pid", p.Pid())
	go func() {
		err := p.Wait()
		close(r.done)
		root.Send(self, procExited{id: id, r: r, err: err})
	}()
}

// alert logs a and hands it to every sink, each bounded by 10 s.
func (s *shell) alert(a messages.Alert) {
	log := s.d.Logger
	log.Error("supervisor alert", "executor", a.Executor, "kind", a.Kind, "failures", a.Failures, "message", a.Message)
	for _, sink := range s.d.Sinks {
		s.sinks.Add(1)
		go func() {
			defer s.sinks.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sink.Send(ctx, a); err != nil {
				log.Error("alert sink failed", "sink", sink.Name(), "executor", a.Executor, "err", err)
			}
		}()
	}
}

// strategy restarts a panicking in-process executor with protoactor's
// OneForOne strategy (only the failed child) while the machine allows, and
// stops it with an alert past MaxRestarts in the window. protoactor calls
// HandleFailure on the supervisor's mailbox, never beside Receive.
type strategy struct {
	s     *shell
	inner actor.SupervisorStrategy
}

func (st *strategy) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, msg any) {
	s := st.s
	id := s.children[child.Id]
	if id == "" {
		id = child.Id
	}
	ok, fx := s.m.ActorFailed(s.d.Now(), id, fmt.Sprint(reason))
	for _, a := range fx.Alerts {
		s.alert(a)
	}
	if !ok {
		sup.StopChildren(child)
		return
	}
	s.d.Logger.Warn("executor actor panicked; restarting", "executor", id, "reason", fmt.Sprint(reason))
	st.inner.HandleFailure(system, sup, child, rs, reason, msg)
}
