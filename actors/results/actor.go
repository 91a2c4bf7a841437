package results

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

// Deps are the result hub's collaborators.
type Deps struct {
	Store     store.Store
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Completed, when set, is told each batch of durable results (metrics).
	Completed func([]task.Result)
	// Dedupe and Dispatch, when set, are asked where unfinished tasks wait
	// (standby, attached, queued, leased, failed); otherwise they are
	// reported as queued.
	Dedupe, Dispatch *actor.PID
}

// MaxWaitIDs bounds the tasks of one Wait.
const MaxWaitIDs = 100_000

type tick struct{}

type shell struct {
	m      *Machine
	d      Deps
	timer  actorio.Timer
	self   *actor.PID
	system *actor.ActorSystem
}

// Props returns the result hub actor.
func Props(d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{m: New(), d: d} })
}

const expireEvery = 50 * time.Millisecond

func (s *shell) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
	case *messages.Wait:
		s.wait(ctx, msg)
	case lookedUp:
		if msg.err != nil {
			if s.m.Cancel(msg.w) {
				s.answer(msg.w, messages.Errorf(messages.CodeUnavailable, "task store read failed: %v", msg.err))
			}
			return
		}
		if s.m.Resolve(msg.w, msg.found) {
			s.answer(msg.w, nil)
		}
	case task.Completed:
		if s.d.Completed != nil {
			s.d.Completed(msg.Results)
		}
		for _, w := range s.m.Completed(msg.Results) {
			s.answer(w, nil)
		}
	case tick:
		s.timer.Clear()
		for _, w := range s.m.Expire(s.d.Now().UnixNano()) {
			s.answer(w, messages.Errorf(messages.CodeTimeout, "some tasks are not finished yet; wait again"))
		}
		s.arm()
	case *actor.Stopping:
		s.timer.Stop()
	}
}

func (s *shell) arm() {
	if s.m.Pending() > 0 && !s.timer.Armed() {
		s.timer.Arm(s.system, s.self, expireEvery, tick{})
	}
}

// wait registers the wait at once, so no completion can slip by, and reads
// the store off the actor: a Wait for many ids must not stall completions.
func (s *shell) wait(ctx actor.Context, msg *messages.Wait) {
	sender := ctx.Sender()
	if len(msg.IDs) == 0 || len(msg.IDs) > MaxWaitIDs {
		s.send(sender, &messages.Outcomes{Err: messages.Errorf(messages.CodeInvalid, "wait needs 1 to %d task ids, got %d", MaxWaitIDs, len(msg.IDs))})
		return
	}
	out := make([]messages.Outcome, len(msg.IDs))
	for i, id := range msg.IDs {
		// Not known yet: the lookup below settles it.
		out[i] = messages.Outcome{TaskID: id, State: messages.StateQueued}
	}
	deadline := s.d.Now().Add(time.Duration(msg.TimeoutMillis) * time.Millisecond).UnixNano()
	w := s.m.Open(sender, out, deadline)
	ids := msg.IDs
	root, self := s.system.Root, s.self
	go func() {
		found, err := s.lookup(ids)
		if err == nil {
			s.locate(root, found)
		}
		root.Send(self, lookedUp{w: w, found: found, err: err})
	}()
	s.arm()
}

// locate refines the state of unfinished tasks by asking dedupe, then the
// dispatcher, where they wait. Best effort: on any failure they stay queued.
func (s *shell) locate(root *actor.RootContext, found []messages.Outcome) {
	if s.d.Dedupe == nil || s.d.Dispatch == nil {
		return
	}
	var idx []int
	var ids []uint64
	for i, o := range found {
		if o.State == messages.StateQueued {
			idx, ids = append(idx, i), append(ids, o.TaskID)
		}
	}
	if len(ids) == 0 {
		return
	}
	ask := func(pid *actor.PID, msg any) []messages.TaskState {
		res, err := root.RequestFuture(pid, msg, 2*time.Second).Result()
		if st, ok := res.([]messages.TaskState); err == nil && ok && len(st) == len(ids) {
			return st
		}
		return nil
	}
	st := ask(s.d.Dedupe, task.DedupeStateRequest{IDs: ids})
	if st == nil {
		return
	}
	for k, i := range idx {
		found[i].State = st[k]
	}
	exact := ask(s.d.Dispatch, task.StateRequest{IDs: ids})
	stuck := false
	for k, i := range idx {
		if exact != nil && st[k] == messages.StateQueued && exact[k] != messages.StateUnknown {
			found[i].State = exact[k]
		}
		stuck = stuck || found[i].State == messages.StateQueued
	}
	if !stuck {
		return
	}
	// Queued tasks may be set aside as unplaceable: say why.
	res, err := root.RequestFuture(s.d.Dispatch, task.ReasonRequest{IDs: ids}, 2*time.Second).Result()
	if why, ok := res.([]string); err == nil && ok && len(why) == len(ids) {
		for k, i := range idx {
			found[i].Reason = why[k]
		}
	}
}

type lookedUp struct {
	w     *Waiter
	found []messages.Outcome
	err   error
}

// lookup reads each task's durable state: its result, or whether it exists.
func (s *shell) lookup(ids []uint64) ([]messages.Outcome, error) {
	bg := context.Background()
	found := make([]messages.Outcome, len(ids))
	for i, id := range ids {
		r, ok, err := s.d.Store.Result(bg, id)
		if err != nil {
			return nil, err
		}
		if ok {
			found[i] = r.Outcome()
			continue
		}
		found[i] = messages.Outcome{TaskID: id, State: messages.StateUnknown}
		if _, ok, err := s.d.Store.Task(bg, id); err != nil {
			return nil, err
		} else if ok {
			// Accepted and unfinished: locate says where it waits.
			found[i].State = messages.StateQueued
		}
	}
	return found, nil
}

func (s *shell) answer(w *Waiter, err *messages.Error) {
	s.send(w.Token.(*actor.PID), &messages.Outcomes{Outcomes: w.Outcomes, Err: err})
}

func (s *shell) send(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}
