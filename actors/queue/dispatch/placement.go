package dispatch

import (
	"container/heap"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Placement: feasibility (set-aside of unplaceable tasks) and ranking
// (backlog-aware estimated finish).
//
// task.Unplaceable tasks. A task with requirements is checked when it enters the
// queues: if no registered executor satisfies them it is set aside instead
// of queued, so it neither blocks the heap nor costs every grant a scan. The
// answer is cached per requirement shape (the canonical text of the
// requirements) and the cache is dropped when an executor registers,
// leaves (expiry, eviction) or starts or stops draining (a draining
// executor counts as able to run nothing). A registration re-examines the
// set-aside tasks; a departure moves queued tasks nobody can run any more
// aside. Set-aside tasks keep
// their queue place (credit) and are reported by task.Unplaceable (status, Wait
// reasons, and demand for the cloud actor).
//
// Estimates. Run time is learned per task type and size bucket (a power of
// two of the declared size; bucket 0 for tasks without a size) as an EWMA of
// the results' run times. A lease carries its estimate, and an executor's
// backlog is the sum of its leases' estimates: kept incrementally, O(1) per
// grant and result. Parked executors are served in order of estimated
// finish (backlog per slot), then load; and work granted beyond an
// executor's free slots and buffer (load-driven prefetch) goes only to an
// executor whose estimated finish for it is no later than the best other
// executor's, so queued work waits for the executor that will finish it
// first rather than piling up behind a long backlog.

// asideKey is what placeability depends on: the task type (executors may
// run only some types) and the requirement shape.
type asideKey struct{ typ, shape string }

// setAside is the tasks of one unplaceable type and requirement shape.
type setAside struct {
	reqs    map[string]string // without the size key
	entries []*entry
	since   int64
}

// shapeOf is the canonical text of a task's requirements (the size key
// excluded), "" when it has none. It runs once per task entering dispatch:
// keys are sorted in a stack buffer and the text built in one allocation.
func shapeOf(req map[string]string) string {
	var buf [8]string
	keys := buf[:0]
	size := 0
	for k, v := range req {
		if k == messages.ReqSize {
			continue
		}
		keys = append(keys, k)
		size += len(k) + len(v) + 3
	}
	if len(keys) == 0 {
		return ""
	}
	for i := 1; i < len(keys); i++ { // insertion sort: a handful of keys
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	var b strings.Builder
	b.Grow(size)
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		v := req[k]
		b.WriteString(k)
		if !strings.HasPrefix(v, "=") {
			b.WriteByte(' ')
		}
		b.WriteString(v)
	}
	return b.String()
}

// sizeBucket maps a size to its power-of-two bucket, 0 for no size.
func sizeBucket(size float64) int8 {
	if size <= 0 {
		return 0
	}
	_, exp := math.Frexp(size)
	return int8(min(max(exp+64, 1), 127))
}

// prepare fills an entry's placement fields from its record: the size
// bucket from the typed Size the intake parsed (the requirements are not
// parsed again), the shape from the requirements, where the pin, a
// constraint like any other, is one key.
func prepare(e *entry) {
	e.bucket = sizeBucket(e.rec.Size)
	if len(e.rec.Requirements) == 0 {
		return
	}
	e.shape = shapeOf(e.rec.Requirements)
}

// satisfies checks requirements against an executor's capabilities (its
// types aside): the pin key against its id, the size key not at all.
func (ex *executor) satisfies(req map[string]string) bool {
	for k, want := range req {
		switch k {
		case messages.ReqSize:
			continue
		case messages.ReqPin:
			if want != "="+ex.id {
				return false
			}
			continue
		}
		if !task.Satisfies(ex.caps[k], want) {
			return false
		}
	}
	return true
}

// placeable reports whether some registered executor that is not draining
// runs e's type and satisfies its requirements (cached per type and
// shape). Tasks without requirements are not checked.
func (m *Machine) placeable(e *entry) bool {
	if e.shape == "" {
		return true
	}
	k := asideKey{e.rec.Type, e.shape}
	if ok, hit := m.shapes[k]; hit {
		return ok
	}
	ok := false
	for _, ex := range m.execs {
		if ex.state != messages.ExecDraining && (ex.types == nil || ex.types[e.rec.Type]) && ex.satisfies(e.rec.Requirements) {
			ok = true
			break
		}
	}
	m.shapes[k] = ok
	return ok
}

// admit queues e, or sets it aside when nobody can run it.
func (m *Machine) admit(ts int64, e *entry) {
	if m.placeable(e) {
		m.queues[e.rec.Class].push(e)
		return
	}
	k := asideKey{e.rec.Type, e.shape}
	g := m.aside[k]
	if g == nil {
		req := maps.Clone(e.rec.Requirements)
		delete(req, messages.ReqSize)
		g = &setAside{reqs: req, since: ts}
		m.aside[k] = g
	}
	g.entries = append(g.entries, e)
	m.asideN++
}

// executorsChanged drops the shape cache after a registration or departure
// and moves tasks between the queues and the set-aside lists accordingly.
func (m *Machine) executorsChanged(joined bool) {
	clear(m.shapes)
	if joined {
		for k, g := range m.aside {
			if !m.placeable(g.entries[0]) {
				continue
			}
			delete(m.aside, k)
			m.asideN -= len(g.entries)
			for _, e := range g.entries {
				m.queues[e.rec.Class].push(e)
			}
		}
		return
	}
	for c := range m.queues {
		q := &m.queues[c]
		keep := (*q)[:0]
		moved := false
		for _, e := range *q {
			if m.placeable(e) {
				keep = append(keep, e)
				continue
			}
			moved = true
			m.admit(e.enqueued, e)
		}
		clear((*q)[len(keep):])
		*q = keep
		if moved {
			heap.Init(q)
		}
	}
}

// removeAside takes id out of the set-aside lists.
func (m *Machine) removeAside(id uint64) *entry {
	for k, g := range m.aside {
		if i := slices.IndexFunc(g.entries, func(e *entry) bool { return e.rec.ID == id }); i >= 0 {
			e := g.entries[i]
			g.entries = slices.Delete(g.entries, i, i+1)
			m.asideN--
			if len(g.entries) == 0 {
				delete(m.aside, k)
			}
			return e
		}
	}
	return nil
}

// asideKey is the key id is set aside under (ok false if it is not).
func (m *Machine) asideOf(id uint64) (asideKey, bool) {
	for k, g := range m.aside {
		if slices.ContainsFunc(g.entries, func(e *entry) bool { return e.rec.ID == id }) {
			return k, true
		}
	}
	return asideKey{}, false
}

// task.Unplaceable lists the set-aside shapes, most tasks first.
func (m *Machine) Unplaceable() []task.Unplaceable {
	out := make([]task.Unplaceable, 0, len(m.aside))
	for k, g := range m.aside {
		out = append(out, task.Unplaceable{Type: k.typ, Shape: k.shape, Requirements: maps.Clone(g.reqs), Tasks: len(g.entries), Since: g.since})
	}
	slices.SortFunc(out, func(a, b task.Unplaceable) int {
		if a.Tasks != b.Tasks {
			return b.Tasks - a.Tasks
		}
		if c := strings.Compare(a.Shape, b.Shape); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}

// UnplaceableCount is the number of set-aside tasks.
func (m *Machine) UnplaceableCount() int { return m.asideN }

// Reason explains why id cannot progress ("" when nothing is wrong).
func (m *Machine) Reason(id uint64) string {
	if m.asideN == 0 {
		return ""
	}
	if k, ok := m.asideOf(id); ok {
		return fmt.Sprintf("unplaceable: no registered executor running %q tasks satisfies %s", k.typ, k.shape)
	}
	return ""
}

type estKey struct {
	typ    string
	bucket int8
}

// runCell is the learned run time of one task type and size bucket. A
// lease keeps its cell, so a result updates it without a map lookup.
type runCell struct {
	ewma float64 // ns; 0: nothing learned yet
}

// cell returns e's estimate cell, creating it.
func (m *Machine) cell(e *entry) *runCell {
	k := estKey{e.rec.Type, e.bucket}
	c := m.runEst[k]
	if c == nil {
		c = &runCell{}
		m.runEst[k] = c
	}
	return c
}

// estimate is e's expected run time in ns on ex, from its cell: learned for
// its type and size bucket, else for its type without a size, else ex's
// average.
func (m *Machine) estimate(e *entry, c *runCell, ex *executor) float64 {
	if c.ewma > 0 {
		return c.ewma
	}
	if e.bucket != 0 {
		if u := m.runEst[estKey{e.rec.Type, 0}]; u != nil && u.ewma > 0 {
			return u.ewma
		}
	}
	return ex.runNanos
}

func (c *runCell) learn(runNanos int64) {
	const alpha = 0.2
	if c.ewma == 0 {
		c.ewma = float64(runNanos)
	} else {
		c.ewma = alpha*float64(runNanos) + (1-alpha)*c.ewma
	}
}

// finish is ex's estimated time to drain its backlog, per slot.
func (ex *executor) finish() float64 { return ex.backlog / float64(ex.slots) }

// betterElsewhere reports whether another executor able to take e would
// finish it earlier than ex (used for prefetch beyond the buffer only).
func (m *Machine) betterElsewhere(ex *executor, e *entry, est float64) bool {
	mine := ex.finish() + est
	for _, o := range m.execs {
		if o == ex || o.state == messages.ExecDraining || len(o.leases) >= int(o.slots)*2 || !o.canRun(e) {
			continue
		}
		if o.finish()+m.estimate(e, m.cell(e), o) < mine {
			return true
		}
	}
	return false
}

// RunEstimate is the learned run time (ns) of a task type and size (0 if
// none learned yet).
func (m *Machine) RunEstimate(typ string, size float64) float64 {
	if c := m.runEst[estKey{typ, sizeBucket(size)}]; c != nil {
		return c.ewma
	}
	return 0
}

// sortParked orders parked executors by estimated finish, then load.
func (m *Machine) sortParked() {
	if len(m.parked) < 2 {
		return
	}
	slices.SortStableFunc(m.parked, func(a, b *executor) int {
		fa, fb := a.finish(), b.finish()
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		la, lb := hostLoad(a.load), hostLoad(b.load)
		switch {
		case la < lb:
			return -1
		case la > lb:
			return 1
		}
		return 0
	})
}
