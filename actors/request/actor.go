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

// committed tells intake a batch left the commit queue (err: not durable).
type committed struct {
	n   int
	err error
}

// Deps are the intake actor's collaborators.
type Deps struct {
	Store store.Store
	// Queue is handed each durable batch (task.Persisted); it tells intake
	// how many tasks wait before its queues (task.Waiting).
	Queue     *actor.PID
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
}

type shell struct {
	cfg    Config
	m      *Machine
	d      Deps
	acks   *store.Ordered
	system *actor.ActorSystem
	// admitted counts tasks handed to the store, less those a failed commit
	// lost; with the queue's Waiting, admitted − Placed is how many durable
	// or committing tasks the queue has not taken in yet.
	admitted int64
	waiting  task.Waiting
	accepted int64 // tasks made durable
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
		if msg.err != nil {
			s.admitted -= int64(msg.n)
		} else {
			s.accepted += int64(msg.n)
		}
	case task.Waiting:
		s.waiting = msg
	case task.CountersRequest:
		ctx.Respond(task.Counters{Accepted: s.accepted})
	}
}

func (s *shell) submit(ctx actor.Context, msg *messages.Submit, digests []task.Digest) {
	sender := ctx.Sender()
	s.m.SetStandby(s.waiting.Standby + s.admitted - s.waiting.Placed)
	recs, err := s.m.AcceptDigested(s.d.Now(), msg, digests)
	if err != nil {
		s.reply(sender, &messages.SubmitAck{Err: err})
		return
	}
	s.admitted += int64(len(recs))
	root, self := s.system.Root, ctx.Self()
	s.acks.Commit(s.d.Store, &store.Batch{Tasks: recs}, func(cerr error) {
		root.Send(self, committed{len(recs), cerr})
		if cerr != nil {
			s.d.Logger.Error("intake commit failed", "tasks", len(recs), "err", cerr)
			s.reply(sender, &messages.SubmitAck{Err: messages.Errorf(messages.CodeUnavailable, "task store write failed: %v", cerr)})
			return
		}
		root.Send(s.d.Queue, task.Persisted{Tasks: recs})
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
