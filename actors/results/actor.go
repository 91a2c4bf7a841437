package results

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Config tunes the result hub.
type Config struct {
	// ExpireEvery is how often waits past their deadline are answered with
	// a timeout. Default 50 ms.
	ExpireEvery time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return Config{ExpireEvery: 50 * time.Millisecond} }

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.ExpireEvery <= 0 {
		return fmt.Errorf("results: ExpireEvery must be > 0, got %v", c.ExpireEvery)
	}
	return nil
}

// Deps are the result hub's collaborators.
type Deps struct {
	Store     store.Store
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Queue, when set, is asked where unfinished tasks wait (standby,
	// attached, queued, leased, failed, with the reason a queued task
	// cannot progress); otherwise they are reported as queued.
	Queue *actor.PID
	// Flows, when set, is the flow runner: it is forwarded durable results
	// while it says it runs flows (task.FlowsActive).
	Flows *actor.PID
}

// MaxWaitIDs bounds the tasks of one Wait.
const MaxWaitIDs = 100_000

type tick struct{}

type awaiter struct {
	to      *actor.PID
	atLeast int64
}

type shell struct {
	cfg    Config
	m      *Machine
	d      Deps
	counts task.Counters // the Done, Deduplicated, Dead and Cancelled counts
	flows  bool          // the flow runner runs flows
	// awaiting are FinishedRequests not answered yet.
	awaiting []awaiter
	timer    actorio.Timer
	self     *actor.PID
	system   *actor.ActorSystem
}

// Props returns the result hub actor.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &shell{cfg: cfg, m: New(), d: d} })
}

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
		switch s.m.Resolve(msg.w, msg.found, s.d.Now().UnixNano()) {
		case Complete:
			s.answer(msg.w, nil)
		case Expired:
			s.answer(msg.w, errTimeout())
		}
	case task.Completed:
		s.counts.Count(msg.Results)
		s.answerAwaiting()
		if s.flows && s.d.Flows != nil {
			ctx.Send(s.d.Flows, task.Completed{Results: msg.Results})
		}
		for _, w := range s.m.Completed(msg.Results) {
			s.answer(w, nil)
		}
	case task.FlowsActive:
		s.flows = msg.Active
	case task.CountersRequest:
		ctx.Respond(s.counts)
	case task.FinishedRequest:
		if ctx.Sender() != nil {
			s.awaiting = append(s.awaiting, awaiter{ctx.Sender(), msg.AtLeast})
			s.answerAwaiting()
		}
	case tick:
		s.timer.Clear()
		for _, w := range s.m.Expire(s.d.Now().UnixNano()) {
			s.answer(w, errTimeout())
		}
		s.arm()
	case *actor.Stopping:
		s.timer.Stop()
	}
}

// answerAwaiting answers the FinishedRequests the counts now satisfy.
func (s *shell) answerAwaiting() {
	fin := s.counts.Finished()
	s.awaiting = slices.DeleteFunc(s.awaiting, func(a awaiter) bool {
		if fin < a.atLeast {
			return false
		}
		s.system.Root.Send(a.to, s.counts)
		return true
	})
}

func (s *shell) arm() {
	if s.m.Pending() > 0 && !s.timer.Armed() {
		s.timer.Arm(s.system, s.self, s.cfg.ExpireEvery, tick{})
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

// locate asks the queue where unfinished tasks wait. Best effort: on any
// failure they stay queued.
func (s *shell) locate(root *actor.RootContext, found []messages.Outcome) {
	if s.d.Queue == nil {
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
	res, err := root.RequestFuture(s.d.Queue, task.LocateRequest{IDs: ids}, 2*time.Second).Result()
	loc, ok := res.([]task.Location)
	if err != nil || !ok || len(loc) != len(ids) {
		return
	}
	for k, i := range idx {
		found[i].State, found[i].Reason = loc[k].State, loc[k].Reason
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

func errTimeout() *messages.Error {
	return messages.Errorf(messages.CodeTimeout, "some tasks are not finished yet; wait again")
}

func (s *shell) answer(w *Waiter, err *messages.Error) {
	s.send(w.Token.(*actor.PID), &messages.Outcomes{Outcomes: w.Outcomes, Err: err})
}

func (s *shell) send(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}
