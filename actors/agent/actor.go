package agent

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// Deps are the relay actor's collaborators.
type Deps struct {
	Dispatch  *actor.PID // the node's dispatcher
	Transport actorio.Transport
	Logger    *slog.Logger
}

// The calls below come from the HTTP handlers in the node's process (Go
// values with reply channels; never over the wire). Each reply channel must
// have room for one answer: the actor never blocks on it.

// RegisterCall (re)registers the agent. Reply gets the dispatcher's answer.
type RegisterCall struct {
	Register *messages.Register
	Reply    chan *messages.Registered
}

// LeaseCall reports results and waits for tasks. Waiter.Token must be a
// chan Answer with room for one.
type LeaseCall struct {
	Waiter  *Waiter
	Load    messages.LoadReport
	Results []messages.Result
}

// HeartbeatCall renews the agent's leases and reports results. Held lists
// the tasks the agent runs (nil: not reported).
type HeartbeatCall struct {
	Load    messages.LoadReport
	Held    []uint64
	Results []messages.Result
	Reply   chan HeartbeatReply
}

// HeartbeatReply answers HeartbeatCall: revoked leases, or why it failed.
type HeartbeatReply struct {
	Cancel []uint64
	Err    *messages.Error
}

// WithdrawCall removes a lease call that gave up. Reply gets false when the
// call was answered already: its Answer is in the waiter's channel.
type WithdrawCall struct {
	Waiter *Waiter
	Reply  chan bool
}

// ReturnCall gives back tasks whose lease response could not be delivered.
type ReturnCall struct{ Tasks []messages.Task }

type shell struct {
	id       string
	m        *Machine
	d        Deps
	pendingR []chan *messages.Registered
}

// Props returns the relay actor of agent id.
func Props(id string, d Deps) *actor.Props {
	if d.Transport == nil {
		d.Transport = actorio.Local{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return actor.PropsFromProducer(func() actor.Actor { return &shell{id: id, m: New(id), d: d} })
}

func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case RegisterCall:
		s.pendingR = append(s.pendingR, msg.Reply)
		s.apply(ctx, s.m.Register(msg.Register))
	case *messages.Registered:
		s.m.RegisteredReply(msg)
		for _, r := range s.pendingR {
			r <- msg
		}
		s.pendingR = nil
	case LeaseCall:
		s.apply(ctx, s.m.Lease(msg.Waiter, msg.Load, msg.Results))
	case HeartbeatCall:
		if !s.m.Registered() {
			msg.Reply <- HeartbeatReply{Err: s.m.unknown()}
			return
		}
		cancel, fx := s.m.Heartbeat(msg.Load, msg.Held, msg.Results)
		s.apply(ctx, fx)
		msg.Reply <- HeartbeatReply{Cancel: cancel}
	case *messages.Grant:
		if msg.Err != nil {
			s.d.Logger.Info("agent relay refused by dispatcher", "agent", s.id, "err", msg.Err)
		}
		s.apply(ctx, s.m.Granted(msg))
	case WithdrawCall:
		msg.Reply <- s.m.Withdraw(msg.Waiter)
	case ReturnCall:
		s.apply(ctx, s.m.Return(msg.Tasks))
	}
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	for _, m := range fx.Send {
		s.d.Transport.Request(ctx, s.d.Dispatch, m)
	}
	for _, a := range fx.Answers {
		a.Waiter.Token.(chan Answer) <- a
	}
}
