package dispatch

import (
	"container/heap"
	"math"
	"strings"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Placement: feasibility (the filters, filter.go, and the set-aside of
// unplaceable tasks, aside.go) and ranking (rank.go: backlog-aware
// estimated finish).
//
// Unplaceable tasks. A task with requirements is checked when it enters
// the queues: if the filters refuse every registered executor it is set
// aside instead of queued, so it neither blocks the heap nor costs every
// grant a scan. The answer is cached per type and requirement shape (the
// canonical text of the requirements) and the cache is dropped when an
// executor registers, leaves (expiry, eviction) or starts or stops
// draining (StateFilter refuses a draining executor). A registration
// re-examines the set-aside tasks; a departure moves queued tasks nobody
// can run any more aside; either way the refusals of the lists left aside
// (which filter refused which executor) are recomputed. Set-aside tasks
// keep their queue place (credit) and are reported by Unplaceable and
// Reason (status, Wait reasons, and demand for the cloud actor).
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

// canRun reports whether the filters pass ex for e, cached per executor,
// type and requirement shape: version constraints are costly to parse.
func (m *Machine) canRun(ex *executor, e *entry) bool {
	k := asideKey{e.rec.Type, e.shape}
	ok, hit := ex.fits[k]
	if !hit {
		ok = feasible(m.filters, &e.rec, Executor{ex}) < 0
		if ex.fits == nil {
			ex.fits = map[asideKey]bool{}
		}
		ex.fits[k] = ok
	}
	return ok
}

// placeable reports whether some registered executor passes the filters
// for e (cached per type and shape). A task without requirements is only
// checked for its type, and only once some executor is registered: before
// the first (a node starting ahead of its workers) nothing can be said yet,
// and the first registration sorts the queues; an executor draining or
// asleep still serves its types.
func (m *Machine) placeable(e *entry) bool {
	if e.shape == "" {
		return len(m.execs) == 0 || m.serves(e.rec.Type)
	}
	k := asideKey{e.rec.Type, e.shape}
	if ok, hit := m.shapes[k]; hit {
		return ok
	}
	ok := false
	for _, ex := range m.execs {
		if m.canRun(ex, e) {
			ok = true
			break
		}
	}
	m.shapes[k] = ok
	return ok
}

// serves reports whether a registered executor runs tasks of typ (cached
// with the shapes).
func (m *Machine) serves(typ string) bool {
	k := asideKey{typ: typ}
	if ok, hit := m.shapes[k]; hit {
		return ok
	}
	ok := false
	for _, ex := range m.execs {
		if ex.types == nil || ex.types[typ] {
			ok = true
			break
		}
	}
	m.shapes[k] = ok
	return ok
}

// explain records which filter refused which executor for rec.
func (m *Machine) explain(rec *task.Record) task.Refusals {
	return refusals(m.filters, rec, m.registry.sorted())
}

// explainAside recomputes the refusals of every set-aside list.
func (m *Machine) explainAside() {
	if len(m.aside) == 0 {
		return
	}
	execs := m.registry.sorted()
	for _, g := range m.aside {
		g.refused = refusals(m.filters, &g.entries[0].rec, execs)
	}
}

// admit queues e, or sets it aside when nobody can run it.
func (m *Machine) admit(ts int64, e *entry) {
	if m.placeable(e) {
		m.enqueue(e)
		return
	}
	m.asideLists.add(ts, asideKey{e.rec.Type, e.shape}, e, func() task.Refusals { return m.explain(&e.rec) })
}

// executorsChanged drops the shape cache after a registration or departure
// and moves tasks between the queues and the set-aside lists accordingly;
// the lists left aside are explained anew.
func (m *Machine) executorsChanged(joined bool) {
	clear(m.shapes)
	defer m.explainAside()
	for k, g := range m.aside {
		if !m.placeable(g.entries[0]) {
			continue
		}
		for _, e := range m.asideLists.take(k) {
			m.enqueue(e)
		}
	}
	if joined && len(m.execs) > 1 {
		return
	}
	// A departure, or the first executor (tasks queued while there was
	// none are sorted now): queued tasks nobody can run go aside.
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

// Unplaceable lists the set-aside shapes, most tasks first, each with the
// filters that refused the executors.
func (m *Machine) Unplaceable() []task.Unplaceable { return m.asideLists.list() }

// UnplaceableCount is the number of set-aside tasks.
func (m *Machine) UnplaceableCount() int { return m.asideN }

// Reason explains why id cannot progress ("" when nothing is wrong): for a
// task set aside, the shape nobody satisfies and which filter refused
// which executors.
func (m *Machine) Reason(id uint64) string {
	if k, g := m.asideLists.of(id); g != nil {
		return reason(k, g)
	}
	return m.pauseReason(id) // pause.go
}

// betterElsewhere reports whether another executor able to take e would
// rank before ex by the first ranker (estimated finish by default) — used
// for work past the quota's free part only.
func (m *Machine) betterElsewhere(ex *executor, e *entry, est float64) bool {
	if len(m.rankers) == 0 {
		return false
	}
	r := m.rankers[0]
	mine := r.Rank(Executor{ex}, est)
	for _, o := range m.execs {
		if o == ex || o.state == messages.ExecDraining || len(o.leases) >= int(o.slots)*2 || !m.canRun(o, e) {
			continue
		}
		if r.Rank(Executor{o}, m.estimate(e, m.cell(e), o)) < mine {
			return true
		}
	}
	return false
}

// RunEstimate is the learned run time (ns) of a task type and size (0 if
// none learned yet).
func (m *Machine) RunEstimate(typ string, size float64) float64 {
	return m.estimates.learned(typ, sizeBucket(size))
}
