package queue

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// cancelLooked carries the store's answer for the ids of a Cancel that the
// queue did not hold.
type cancelLooked struct {
	sender *actor.PID
	ids    []uint64 // the Cancel's ids, in order
	looked map[uint64]lookup
}

// lookup is what the store holds of one task.
type lookup struct {
	result    task.Result
	finished  bool // result is its terminal result
	rec       task.Record
	exists    bool
	storeFail bool
}

// cancel answers a client's Cancel. Live tasks are cancelled at once (the
// dispatcher's part asynchronously: Wait shows the final state). Tasks the
// queue does not hold are looked up in the store off the actor; cancelled
// then settles them.
func (s *shell) cancel(ctx actor.Context, now time.Time, msg *messages.Cancel) {
	unknown, fx := s.dedupe.Cancel(now, msg.IDs)
	s.deduped(now, fx)
	m := cancelLooked{sender: ctx.Sender(), ids: msg.IDs, looked: make(map[uint64]lookup, len(unknown))}
	if len(unknown) == 0 {
		s.cancelled(now, m)
		return
	}
	st, root, self := s.d.Store, s.system.Root, s.self
	go func() {
		bg := context.Background()
		for _, id := range unknown {
			var l lookup
			var err error
			if l.result, l.finished, err = st.Result(bg, id); err == nil && !l.finished {
				l.rec, l.exists, err = st.Task(bg, id)
			}
			l.storeFail = err != nil
			m.looked[id] = l
		}
		root.Send(self, m)
	}()
}

// cancelled finishes a Cancel once the store was read. A task that exists
// and has no result is cancelled again here: if the pump took it in
// meanwhile it is live now and cancelled as such; if not it waits in
// standby, and its cancelled result is made durable before the answer.
func (s *shell) cancelled(now time.Time, m cancelLooked) {
	var standbyIDs []uint64
	for id, l := range m.looked {
		if l.exists {
			standbyIDs = append(standbyIDs, id)
		}
	}
	still := map[uint64]bool{}
	if len(standbyIDs) > 0 {
		unknown, fx := s.dedupe.Cancel(now, standbyIDs)
		s.deduped(now, fx)
		for _, id := range unknown {
			still[id] = true
		}
	}
	out := &messages.Outcomes{}
	var standby []task.Result
	for _, id := range m.ids {
		l, looked := m.looked[id]
		switch {
		case !looked:
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateCancelled})
		case l.finished:
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: l.result.State, Attempts: l.result.Attempts})
		case l.storeFail || !l.exists:
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateUnknown, Error: "no such task"})
		default:
			if still[id] {
				s.dedupe.Drop(id)
				t := &l.rec
				standby = append(standby, task.Result{ID: id, Class: t.Class, Digest: t.Digest, State: messages.StateCancelled, Attempts: t.Attempts, FinishedAt: now.UnixNano()})
			}
			out.Outcomes = append(out.Outcomes, messages.Outcome{TaskID: id, State: messages.StateCancelled})
		}
	}
	root, sender, tr := s.system.Root, m.sender, s.d.Transport
	reply := func(err error) {
		if err != nil {
			out.Err = messages.Errorf(messages.CodeUnavailable, "cancel not recorded: %v", err)
		}
		if sender != nil {
			tr.Send(root, sender, out)
		}
	}
	if len(standby) == 0 {
		reply(nil)
		return
	}
	s.persist(standby, reply)
}
