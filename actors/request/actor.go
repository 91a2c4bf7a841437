package request

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// committed tells intake a batch left the commit queue.
type committed struct{ n int }

// Deps are the intake actor's collaborators.
type Deps struct {
	Store     store.Store
	Pump      *actor.PID
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Accepted, when set, is told how many tasks became durable.
	Accepted func(n int)
	// Waiting reads how many tasks wait before the queues: the pump's
	// standby count plus the accepted tasks it has not classified yet.
	Waiting func() int64
	// Unclassified is told of tasks accepted (+n) or lost to a failed
	// commit (−n); the pump subtracts the ones it classifies.
	Unclassified func(delta int64)
}

type shell struct {
	cfg    Config
	m      *Machine
	d      Deps
	acks   *store.Ordered
	system *actor.ActorSystem
}

// Props returns the intake actor. maxID is the store's id high-water mark.
func Props(cfg Config, maxID uint64, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{cfg: cfg, m: New(cfg, maxID), d: d} })
}

func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.system = ctx.ActorSystem()
		s.acks = store.NewOrdered(int(s.cfg.MaxInflight)) // never blocks: intake refuses past MaxInflight
	case *actor.Stopping:
		s.acks.Close() // every queued submission is answered
	case *messages.Submit:
		s.submit(ctx, msg, nil)
	case task.Routed:
		s.submit(ctx, msg.Submit, msg.Digests)
	case committed:
		s.m.Committed(msg.n)
	}
}

func (s *shell) submit(ctx actor.Context, msg *messages.Submit, digests []task.Digest) {
	sender := ctx.Sender()
	s.m.SetStandby(s.d.Waiting())
	recs, err := s.m.AcceptDigested(s.d.Now(), msg, digests)
	if err != nil {
		s.reply(sender, &messages.SubmitAck{Err: err})
		return
	}
	s.d.Unclassified(int64(len(recs)))
	root, self := s.system.Root, ctx.Self()
	s.acks.Commit(s.d.Store, &store.Batch{Tasks: recs}, func(cerr error) {
		root.Send(self, committed{len(recs)})
		if cerr != nil {
			s.d.Unclassified(-int64(len(recs)))
			s.d.Logger.Error("intake commit failed", "tasks", len(recs), "err", cerr)
			s.reply(sender, &messages.SubmitAck{Err: messages.Errorf(messages.CodeUnavailable, "task store write failed: %v", cerr)})
			return
		}
		root.Send(s.d.Pump, task.Persisted{Tasks: recs})
		if s.d.Accepted != nil {
			s.d.Accepted(len(recs))
		}
		ids := make([]uint64, len(recs))
		for i := range recs {
			ids[i] = recs[i].ID
		}
		s.reply(sender, &messages.SubmitAck{IDs: ids})
	})
}

func (s *shell) reply(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}
