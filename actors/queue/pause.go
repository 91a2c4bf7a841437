package queue

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// pause answers a Pause. The dispatcher stops (or resumes) granting at
// once; the new paused set is committed to the store off the actor, and
// the sender is answered once it is durable. Commits run in call order, so
// of two pauses in flight the store keeps the later, as the dispatcher
// does. If the commit fails the dispatcher keeps the new set and the
// sender hears the error: after a restart the last durable set applies.
func (s *shell) pause(ctx actor.Context, now time.Time, msg *messages.Pause) {
	sender := ctx.Sender()
	classes, err := task.ParsePause(msg)
	if err != nil {
		s.send(sender, &messages.PauseAck{Err: messages.Errorf(messages.CodeInvalid, "%v", err)})
		return
	}
	next := s.disp.Paused().With(msg.Types, classes, msg.Resume)
	s.dispatched(ctx, now, s.disp.SetPaused(now, next))
	verb := "paused"
	if msg.Resume {
		verb = "resumed"
	}
	s.d.Logger.Info("dispatch "+verb, "types", msg.Types, "classes", msg.Classes, "paused_types", next.Types, "paused_classes", next.ClassNames())
	root, tr, log := s.system.Root, s.d.Transport, s.d.Logger
	store.Then(s.d.Store, &store.Batch{Paused: &next}, func(err error) {
		ack := &messages.PauseAck{Types: next.Types, Classes: next.ClassNames()}
		if err != nil {
			log.Error("paused set commit failed", "err", err)
			ack.Err = messages.Errorf(messages.CodeInternal, "the paused set is in force but not durable: %v; send it again", err)
		}
		if sender != nil {
			tr.Send(root, sender, ack)
		}
	})
}
