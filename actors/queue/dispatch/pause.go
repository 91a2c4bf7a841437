package dispatch

import (
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Pause. Paused task types and priority classes are held back from
// grants; their tasks stay queued (and durable: nothing here touches the
// store) and keep their queue places, so the pump stops taking more of
// their class in once the places are full and the rest waits in standby.
// Leases granted before the pause run on.
//
// A paused class's tasks stay in its heap and the class is skipped by
// every grant (blocked from the start). A paused type's tasks are moved
// out of the heaps into a hold list, so a flood of them at a heap's head
// does not eat the scan limit of every grant; tasks of a paused type that
// arrive later (intake, retries, eviction, set-aside tasks becoming
// placeable) go to the hold list too (enqueue). Resuming a type admits its
// held tasks again, in id order.

// pauseState is the paused set and the tasks held back by type.
type pauseState struct {
	paused task.Paused
	held   map[string][]*entry // paused type → its held tasks
	n      [messages.NumClasses]int
}

// enqueue queues e in its class, or holds it when its type is paused.
func (m *Machine) enqueue(e *entry) {
	if m.paused.Type(e.rec.Type) {
		m.held[e.rec.Type] = append(m.held[e.rec.Type], e)
		m.pauseState.n[e.rec.Class]++
		return
	}
	m.classQueues.push(e)
}

// pausedClasses is the classes a grant skips from the start.
func (m *Machine) pausedClasses() [messages.NumClasses]bool {
	var b [messages.NumClasses]bool
	for _, c := range m.paused.Classes {
		b[c] = true
	}
	return b
}

// pausedType reports whether e's type is paused (a task of it found in a
// heap is skipped; enqueue keeps them out).
func (m *Machine) pausedType(e *entry) bool {
	return len(m.paused.Types) > 0 && m.paused.Type(e.rec.Type)
}

// Paused is the paused set.
func (m *Machine) Paused() task.Paused { return m.paused }

// SetPaused replaces the paused set: tasks of newly paused types leave the
// heaps for the hold list, those of resumed types are queued again, and
// parked executors are served what a resume let go.
func (m *Machine) SetPaused(now time.Time, p task.Paused) Effects {
	old := m.paused
	m.paused = p
	for _, typ := range p.Types {
		if !old.Type(typ) {
			m.holdType(typ)
		}
	}
	ts := now.UnixNano()
	for _, typ := range old.Types {
		if p.Type(typ) {
			continue
		}
		es := m.held[typ]
		delete(m.held, typ)
		slices.SortFunc(es, func(a, b *entry) int { return cmpID(a.rec.ID, b.rec.ID) })
		for _, e := range es {
			m.pauseState.n[e.rec.Class]--
			m.admit(ts, e)
		}
	}
	var fx Effects
	m.serveParked(now, &fx)
	return fx
}

// holdType moves the queued tasks of typ into the hold list.
func (m *Machine) holdType(typ string) {
	for c := range m.queues {
		q := &m.queues[c]
		if !slices.ContainsFunc(*q, func(e *entry) bool { return e.rec.Type == typ }) {
			continue
		}
		keep := (*q)[:0]
		for _, e := range *q {
			if e.rec.Type == typ {
				m.held[typ] = append(m.held[typ], e)
				m.pauseState.n[c]++
			} else {
				keep = append(keep, e)
			}
		}
		clear((*q)[len(keep):])
		*q = keep
		heap.Init(q)
	}
}

// remove takes id off the hold list (nil if it is not held).
func (p *pauseState) remove(id uint64) *entry {
	for typ, es := range p.held {
		if i := slices.IndexFunc(es, func(e *entry) bool { return e.rec.ID == id }); i >= 0 {
			e := es[i]
			p.held[typ] = slices.Delete(es, i, i+1)
			p.n[e.rec.Class]--
			return e
		}
	}
	return nil
}

// holds reports whether id is on the hold list.
func (p *pauseState) holds(id uint64) bool {
	for _, es := range p.held {
		if slices.ContainsFunc(es, func(e *entry) bool { return e.rec.ID == id }) {
			return true
		}
	}
	return false
}

// pauseReason says why a queued task waits on a pause ("" if it does not).
func (m *Machine) pauseReason(id uint64) string {
	if m.paused.Empty() {
		return ""
	}
	for typ, es := range m.held {
		if slices.ContainsFunc(es, func(e *entry) bool { return e.rec.ID == id }) {
			return fmt.Sprintf("paused: task type %q is paused (shoal resume %s)", typ, typ)
		}
	}
	for _, c := range m.paused.Classes {
		if slices.ContainsFunc(m.queues[c], func(e *entry) bool { return e.rec.ID == id }) {
			return fmt.Sprintf("paused: priority class %s is paused (shoal resume --class %s)", c, c)
		}
	}
	return ""
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
