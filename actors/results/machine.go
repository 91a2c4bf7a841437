// Package results is the result hub: clients Wait for tasks and are answered
// as soon as every task they wait for has a durable terminal result.
package results

import (
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Waiter is one pending Wait.
type Waiter struct {
	Token     any // the shell's reply address
	Outcomes  []messages.Outcome
	remaining int
	deadline  int64
	// looked is set once the store has said what each task is: until then
	// the outcomes are placeholders, and the wait is never answered by its
	// deadline (only by completions, which are real states).
	looked bool
}

// Machine tracks pending waits. It does no I/O.
type Machine struct {
	byTask  map[uint64][]*Waiter
	waiters map[*Waiter]struct{}
}

// New returns an empty hub.
func New() *Machine {
	return &Machine{byTask: map[uint64][]*Waiter{}, waiters: map[*Waiter]struct{}{}}
}

// Wait registers a wait over outcomes already known (filled for terminal
// tasks). It returns the waiter if it is complete at once, else nil.
func (m *Machine) Wait(token any, outcomes []messages.Outcome, deadline int64) *Waiter {
	w := m.Open(token, outcomes, deadline)
	w.looked = true
	if w.remaining > 0 {
		return nil
	}
	return w
}

// Open registers a wait whose outcomes are placeholders until Resolve
// gives what the store says, and returns it; a wait with nothing left to
// wait for is returned unregistered (complete). Its deadline does not
// answer it before Resolve: a placeholder is never an answer.
func (m *Machine) Open(token any, outcomes []messages.Outcome, deadline int64) *Waiter {
	w := &Waiter{Token: token, Outcomes: outcomes, deadline: deadline}
	for _, o := range outcomes {
		if !o.State.Terminal() && o.State != messages.StateUnknown {
			w.remaining++
			m.byTask[o.TaskID] = append(m.byTask[o.TaskID], w)
		}
	}
	if w.remaining > 0 {
		m.waiters[w] = struct{}{}
	}
	return w
}

// Resolution is what Resolve made of a wait.
type Resolution int

const (
	// StillOpen: the wait goes on (tasks unfinished, deadline ahead).
	StillOpen Resolution = iota
	// Complete: every task is terminal or unknown; answer it.
	Complete
	// Expired: the deadline passed while the store was read; answer it
	// with what is now known (a timeout).
	Expired
)

// Resolve fills a registered wait with what the store said of each task
// (found[i] for w.Outcomes[i]): terminal results and unknown ids settle
// their entry unless a completion already did. A wait no longer
// registered (completed or cancelled meanwhile) stays StillOpen; one that
// is complete, or past its deadline at now, is unregistered and reported
// so the shell answers it.
func (m *Machine) Resolve(w *Waiter, found []messages.Outcome, now int64) Resolution {
	if _, live := m.waiters[w]; !live {
		return StillOpen
	}
	w.looked = true
	for i, f := range found {
		o := &w.Outcomes[i]
		if o.State.Terminal() || o.State == messages.StateUnknown {
			continue
		}
		if f.State.Terminal() || f.State == messages.StateUnknown {
			*o = f
			w.remaining--
			m.unlink(f.TaskID, w)
		} else {
			o.State, o.Reason = f.State, f.Reason // where it waits (and why), for an answer at the timeout
		}
	}
	if w.remaining == 0 {
		delete(m.waiters, w)
		return Complete
	}
	if w.deadline <= now {
		m.Cancel(w)
		return Expired
	}
	return StillOpen
}

// Completed takes durable results and returns the waits they complete.
func (m *Machine) Completed(results []task.Result) []*Waiter {
	var done []*Waiter
	for _, r := range results {
		ws, ok := m.byTask[r.ID]
		if !ok {
			continue
		}
		delete(m.byTask, r.ID)
		for _, w := range ws {
			for i := range w.Outcomes {
				if w.Outcomes[i].TaskID == r.ID && !w.Outcomes[i].State.Terminal() {
					w.Outcomes[i] = r.Outcome()
					w.remaining--
				}
			}
			if w.remaining == 0 {
				if _, live := m.waiters[w]; live {
					delete(m.waiters, w)
					done = append(done, w)
				}
			}
		}
	}
	return done
}

// Cancel drops a registered wait; it reports whether it was registered.
func (m *Machine) Cancel(w *Waiter) bool {
	if _, live := m.waiters[w]; !live {
		return false
	}
	delete(m.waiters, w)
	for _, o := range w.Outcomes {
		if !o.State.Terminal() && o.State != messages.StateUnknown {
			m.unlink(o.TaskID, w)
		}
	}
	return true
}

// Expire returns the waits whose deadline is at or before now and whose
// store lookup has resolved; they are answered with what is known. A wait
// still being looked up is left to Resolve, which answers it if its
// deadline has passed by then.
func (m *Machine) Expire(now int64) []*Waiter {
	var out []*Waiter
	for w := range m.waiters {
		if w.looked && w.deadline <= now {
			m.Cancel(w)
			out = append(out, w)
		}
	}
	return out
}

func (m *Machine) unlink(id uint64, w *Waiter) {
	ws := m.byTask[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m.byTask, id)
	} else {
		m.byTask[id] = ws
	}
}

// Pending is the number of open waits.
func (m *Machine) Pending() int { return len(m.waiters) }
