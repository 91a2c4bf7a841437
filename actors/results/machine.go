// Package results is the result hub: clients Wait for tasks and are answered
// as soon as every task they wait for has a durable terminal result.
package results

import (
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
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

// Outcome turns a durable result into what a client sees.
func Outcome(r store.ResultRecord) messages.Outcome {
	return messages.Outcome{TaskID: r.ID, State: r.State, Output: r.Output, Error: r.Error, Attempts: r.Attempts, AliasOf: r.AliasOf}
}

// Wait registers a wait over outcomes (already filled for terminal tasks).
// It returns the waiter if it is complete at once, else nil.
func (m *Machine) Wait(token any, outcomes []messages.Outcome, deadline int64) *Waiter {
	w := &Waiter{Token: token, Outcomes: outcomes, deadline: deadline}
	for _, o := range outcomes {
		if !o.State.Terminal() && o.State != messages.StateUnknown {
			w.remaining++
			m.byTask[o.TaskID] = append(m.byTask[o.TaskID], w)
		}
	}
	if w.remaining == 0 {
		return w
	}
	m.waiters[w] = struct{}{}
	return nil
}

// Completed takes durable results and returns the waits they complete.
func (m *Machine) Completed(results []store.ResultRecord) []*Waiter {
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
					w.Outcomes[i] = Outcome(r)
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

// Expire returns the waits whose deadline is at or before now; they are
// answered with what is known.
func (m *Machine) Expire(now int64) []*Waiter {
	var out []*Waiter
	for w := range m.waiters {
		if w.deadline <= now {
			delete(m.waiters, w)
			for _, o := range w.Outcomes {
				if !o.State.Terminal() {
					m.unlink(o.TaskID, w)
				}
			}
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
