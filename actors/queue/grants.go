package queue

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/store"
)

// Grants wait for the attempts they start (issue 15). The dispatcher
// counts an attempt when it grants it (dispatch.Effects.Starts), and a
// grant goes out only once that count survives the process, so a node
// killed while the task runs (even killed by the task, in an in-process
// worker) finds the run counted at recovery: attempts do not undercount
// runs, and a task that kills its node ends dead after MaxAttempts.
//
// With a StartRecorder (the node's store.StartLog) a start is one write(2)
// into the page cache, made before the grant is sent; without one the starts join the next result commit and the grant
// waits for its sync. Grants leave in the order they were made: a later
// one waits behind an earlier one still being recorded.

// StartRecorder records attempt starts so that they survive the process
// (store.StartLog): once Record returns they do; Done forgets the starts
// of tasks whose results are durable.
type StartRecorder interface {
	Record(starts []store.AttemptUpdate) error
	Done(ids []uint64)
}

// outgoing is a message for an executor.
type outgoing struct {
	to  *actor.PID
	msg any
}

// heldGrants are the grants of one step, held until ready.
type heldGrants struct {
	sends []outgoing
	ready bool
}

// sendGrants sends sends once starts are recorded, after every grant held
// before them.
func (s *shell) sendGrants(sends []outgoing, starts []store.AttemptUpdate) {
	switch {
	case len(starts) > 0 && s.d.Starts != nil:
		// One write(2) into the page cache, here rather than on another
		// goroutine: the hand-off and the message back cost W1 more than
		// the write (measured, docs/architecture.md).
		if err := s.d.Starts.Record(starts); err != nil {
			s.d.Logger.Error("attempt start record failed", "tasks", len(starts), "err", err)
		}
		for _, o := range sends {
			s.send(o.to, o.msg)
		}
	case len(starts) > 0: // with the next result commit (flushPending)
		if s.startsHeld == nil {
			s.startsHeld = &heldGrants{}
			s.held = append(s.held, s.startsHeld)
		}
		s.startsHeld.sends = append(s.startsHeld.sends, sends...)
		s.starts = append(s.starts, starts...)
		s.scheduleFlush()
	case len(sends) == 0:
	case len(s.held) == 0:
		for _, o := range sends {
			s.send(o.to, o.msg)
		}
	case s.held[len(s.held)-1] == s.startsHeld: // still gathering: go out with it
		s.startsHeld.sends = append(s.startsHeld.sends, sends...)
	default:
		s.held = append(s.held, &heldGrants{sends: sends, ready: true})
	}
}

// released marks h's starts recorded and sends every grant now free to go.
func (s *shell) released(h *heldGrants, starts int, err error) {
	if err != nil {
		// The grants still go: the failure loses the count after a crash
		// (the task runs again at the same attempt), not the work.
		s.d.Logger.Error("attempt start record failed", "tasks", starts, "err", err)
	}
	h.ready = true
	for len(s.held) > 0 && s.held[0].ready {
		for _, o := range s.held[0].sends {
			s.send(o.to, o.msg)
		}
		s.held[0] = nil
		s.held = s.held[1:]
	}
}
