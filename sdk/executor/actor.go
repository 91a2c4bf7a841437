package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// Handler runs one task. A returned error fails the attempt; wrap it with
// Permanent when retrying cannot help. ctx is cancelled when the node
// revokes the lease (the task was cancelled or ran past its timeout) or
// the executor stops, and has the task's deadline when it has a run
// timeout (Task.TimeoutMillis).
type Handler func(ctx context.Context, t messages.Task) ([]byte, error)

// PermanentError marks a failure that must not be retried.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the task is not retried.
func Permanent(err error) error { return &PermanentError{Err: err} }

// Deps are the executor actor's collaborators.
type Deps struct {
	Dispatch  *actor.PID // the node's dispatcher
	Transport actorio.Transport
	Handlers  map[string]Handler
	Logger    *slog.Logger
	Sampler   *LoadSampler // nil: report zero load
	// OnRegistered, when set, is called with the node's answer to Register.
	OnRegistered func(*messages.Registered)
	// Health, when set, is the executor's own health check, run before each
	// heartbeat; its error rides on the heartbeat and the node's supervisor
	// evicts the executor (docs/supervision.md).
	Health func() error
}

type flush struct{}
type heartbeat struct{}
type sample struct{}
type register struct{}

// registerCheck re-sends a Register that got no answer: the node may have
// been starting (its remote up before its dispatcher) or gone meanwhile,
// and a request to a missing actor is dropped without a reply.
type registerCheck struct{}

// RegisterRetry is the default of Config.RegisterRetry: how long an
// executor waits for Registered before it registers again.
const RegisterRetry = 3 * time.Second

type shell struct {
	cfg  Config
	d    Deps
	m    *Machine
	work chan messages.Task
	// backlog holds granted tasks the work channel had no room for: the
	// actor never blocks on a hand-off (heartbeats must go on), and each
	// finished task (its flush) moves the backlog on.
	backlog []messages.Task
	server  serverInfo // the servers view's figures (resources.go)

	mu      sync.Mutex
	done    []messages.Result
	cancels map[uint64]*taskCtx

	base     context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	hb, load actorio.Timer
	regCheck actorio.Timer
	inc      uint64 // Register.Incarnation of this run
	hbEvery  time.Duration
	// sleepEvery is the heartbeat interval while asleep (from Grant.Sleep).
	sleepEvery time.Duration
	self       *actor.PID
	system     *actor.ActorSystem
}

// Props returns an executor actor for cfg. Its Types are the handlers' keys.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &shell{cfg: cfg, d: d, m: NewMachine(cfg), cancels: map[uint64]*taskCtx{}}
	})
}

func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.started(ctx)
	case register:
		s.register(ctx)
	case registerCheck:
		if !s.m.IsRegistered() {
			s.d.Logger.Warn("no answer to registration; registering again", "executor", s.cfg.ID)
			s.register(ctx)
		}
	case *messages.Registered:
		s.regCheck.Stop()
		if s.d.OnRegistered != nil {
			s.d.OnRegistered(msg)
		}
		if msg.Err != nil {
			s.d.Logger.Error("registration refused", "executor", s.cfg.ID, "err", msg.Err)
			if msg.Err.Code != messages.CodeUnauthorized && msg.Err.Code != messages.CodeVersion {
				s.retryRegister()
			}
			return
		}
		s.m.Registered(true)
		s.hbEvery = max(time.Duration(msg.HeartbeatMillis)*time.Millisecond, 10*time.Millisecond)
		s.hb.Arm(s.system, s.self, s.hbEvery, heartbeat{})
		s.next(ctx, false)
	case *messages.Grant:
		if msg.Err != nil {
			s.d.Logger.Warn("node refused pull", "executor", s.cfg.ID, "err", msg.Err)
			s.m.Registered(false)
			s.retryRegister()
			return
		}
		s.revoke(msg.Cancel)
		wasSleeping := s.m.Sleeping()
		s.backlog = append(s.backlog, s.m.Granted(msg)...)
		s.feed()
		if s.m.Sleeping() != wasSleeping { // low-power heartbeats while asleep
			s.sleepEvery = time.Duration(msg.HeartbeatMillis) * time.Millisecond
			s.d.Logger.Info("executor sleep state", "executor", s.cfg.ID, "sleeping", msg.Sleep)
			s.hb.Arm(s.system, s.self, s.heartbeatEvery(), heartbeat{})
		}
		s.next(ctx, false)
	case flush:
		s.mu.Lock()
		done := s.done
		s.done = nil
		s.mu.Unlock()
		for _, r := range done {
			s.m.Done(r)
		}
		s.feed() // slots freed room
		s.next(ctx, false)
	case heartbeat:
		if s.d.Health != nil {
			s.m.SetHealth(s.d.Health())
		}
		s.next(ctx, true)
		s.hb.Arm(s.system, s.self, s.heartbeatEvery(), heartbeat{})
	case sample:
		l, err := s.d.Sampler.Sample()
		if err != nil {
			s.d.Logger.Warn("load sample failed", "err", err)
		}
		s.server.fill(&l, s.cfg.LoadInterval) // resources.go: disk, processes, address
		s.m.SetLoad(l)
		s.load.Arm(s.system, s.self, s.cfg.LoadInterval, sample{})
	case *actor.Restarting: // protoactor supervision: a fresh shell starts
		s.shutdown()
	case *actor.Stopping:
		s.shutdown()
	}
}

// shutdown stops the timers and the slots (on stop, and before a
// supervised restart, whose new shell registers again: the node then
// requeues what this one held).
func (s *shell) shutdown() {
	s.regCheck.Stop()
	s.hb.Stop()
	s.load.Stop()
	if s.work == nil {
		return // failed before it started
	}
	s.stop()
	close(s.work)
	s.wg.Wait()
	s.work = nil
	s.backlog = nil // like the tasks in the channel: the node requeues them when the leases lapse
}

// feed moves backlog tasks to the slots while the work channel has room,
// never blocking the actor.
func (s *shell) feed() {
	for len(s.backlog) > 0 {
		select {
		case s.work <- s.backlog[0]:
			s.backlog[0] = messages.Task{}
			s.backlog = s.backlog[1:]
		default:
			return
		}
	}
	s.backlog = nil
}

func (s *shell) heartbeatEvery() time.Duration {
	if s.m.Sleeping() && s.sleepEvery > 0 {
		return s.sleepEvery
	}
	return s.hbEvery
}

func (s *shell) started(ctx actor.Context) {
	s.self, s.system = ctx.Self(), ctx.ActorSystem()
	s.inc = rand.Uint64() | 1
	s.base, s.stop = context.WithCancel(context.Background())
	// The node may let an executor hold up to slots × (1 + its buffer, 16 by
	// default) when tasks are very short; what the channel cannot take waits
	// in the backlog (feed). (A channel sized for the worst case measurably
	// slowed W3.)
	s.work = make(chan messages.Task, 4*s.cfg.Slots+1024)
	for range s.cfg.Slots {
		s.wg.Add(1)
		go s.slot(s.work) // the channel, not the field: shutdown clears the field
	}
	if s.d.Sampler != nil {
		s.load.Arm(s.system, s.self, time.Millisecond, sample{})
	}
	s.register(ctx)
}

func (s *shell) register(ctx actor.Context) {
	types := make([]string, 0, len(s.d.Handlers))
	for t := range s.d.Handlers {
		types = append(types, t)
	}
	s.d.Transport.Request(ctx, s.d.Dispatch, &messages.Register{
		Version: messages.ProtocolVersion, ExecutorID: s.cfg.ID, Types: types,
		Slots: int32(s.cfg.Slots), Capabilities: s.cfg.Capabilities, Token: s.cfg.Token,
		Incarnation: s.inc,
	})
	every := s.cfg.RegisterRetry
	if every <= 0 {
		every = RegisterRetry
	}
	s.regCheck.Arm(s.system, s.self, every, registerCheck{})
}

func (s *shell) retryRegister() {
	self, root := s.self, s.system.Root
	time.AfterFunc(time.Second, func() { root.Send(self, register{}) })
}

func (s *shell) next(ctx actor.Context, hb bool) {
	for {
		msg := s.m.Next(hb)
		if msg == nil {
			return
		}
		s.d.Transport.Request(ctx, s.d.Dispatch, msg)
		hb = false
		if s.m.Pending() == 0 {
			return
		}
	}
}

func (s *shell) revoke(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if c := s.cancels[id]; c != nil {
			c.cancel(context.Canceled)
		}
	}
}

func (s *shell) slot(work <-chan messages.Task) {
	defer s.wg.Done()
	for t := range work {
		s.report(s.run(t))
	}
}

func (s *shell) run(t messages.Task) (r messages.Result) {
	r = messages.Result{TaskID: t.ID, Attempt: t.Attempt}
	h := s.d.Handlers[t.Type]
	if h == nil {
		r.Error, r.Permanent = fmt.Sprintf("executor %s has no handler for task type %q", s.cfg.ID, t.Type), true
		return r
	}
	ctx := newTaskCtx(s.base)
	s.mu.Lock()
	s.cancels[t.ID] = ctx
	s.mu.Unlock()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r.OK, r.Output = false, nil
			r.Error = fmt.Sprintf("handler panicked: %v\n%s", p, debug.Stack())
		}
		r.RunNanos = time.Since(start).Nanoseconds()
		ctx.release()
		s.mu.Lock()
		delete(s.cancels, t.ID)
		s.mu.Unlock()
	}()
	var hctx context.Context = ctx
	if t.TimeoutMillis > 0 {
		// The node fails the attempt at the deadline and revokes the lease;
		// the handler's context ends then even if the revoke is lost.
		var stop context.CancelFunc
		hctx, stop = context.WithTimeout(ctx, time.Duration(t.TimeoutMillis)*time.Millisecond)
		defer stop()
	}
	out, err := h(hctx, t)
	if err != nil {
		var perm *PermanentError
		r.Error, r.Permanent = err.Error(), errors.As(err, &perm)
		if t.TimeoutMillis > 0 && errors.Is(hctx.Err(), context.DeadlineExceeded) {
			r.Error = fmt.Sprintf("timeout: the handler ran past its %v timeout: %v", time.Duration(t.TimeoutMillis)*time.Millisecond, err)
		}
		return r
	}
	r.OK, r.Output = true, out
	return r
}

// report hands a result to the actor; the first result of a batch wakes it,
// later ones ride along, so reports batch themselves under load.
func (s *shell) report(r messages.Result) {
	s.mu.Lock()
	wake := len(s.done) == 0
	s.done = append(s.done, r)
	s.mu.Unlock()
	if wake {
		s.system.Root.Send(s.self, flush{})
	}
}
