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

// Wait registers a wait over outcomes (already filled for terminal tasks).
// It returns the waiter if it is complete at once, else nil.
func (m *Machine) Wait(token any, outcomes []messages.Outcome, deadline int64) *Waiter {
	w := m.Open(token, outcomes, deadline)
	if w.remaining > 0 {
		return nil
	}
	return w
}

// Open registers a wait and returns it; a wait with nothing left to wait
// for is returned unregistered (complete).
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

// Resolve fills a registered wait with what the store said of each task
// (found[i] for w.Outcomes[i]): terminal results and unknown ids settle
// their entry unless a completion already did. It reports whether the wait
// is now complete (and so no longer registered). A wait that expired
// meanwhile is ignored.
func (m *Machine) Resolve(w *Waiter, found []messages.Outcome) bool {
	if _, live := m.waiters[w]; !live {
		return false
	}
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
	if w.remaining > 0 {
		return false
	}
	delete(m.waiters, w)
	return true
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

// Expire returns the waits whose deadline is at or before now; they are
// answered with what is known.
func (m *Machine) Expire(now int64) []*Waiter {
	var out []*Waiter
	for w := range m.waiters {
		if w.deadline <= now {
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
