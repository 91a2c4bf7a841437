package dispatch

// leaseTable is the live leases by task id. Each lease is also in its
// executor's own table and counted in its backlog; the table keeps the
// three in step.
type leaseTable struct {
	leases    map[uint64]*lease
	deadlines deadlines // timed leases, earliest deadline first (timeout.go)
}

type lease struct {
	e       *entry
	exec    *executor
	attempt int32
	est     float64 // estimated run time, ns (counted in exec.backlog)
	cell    *runCell
	// deadline is when the attempt times out (unix ns; 0: no timeout);
	// heapAt is its place in leaseTable.deadlines (-1: not there).
	deadline int64
	heapAt   int
	// granted is when the lease was granted (unix ns).
	granted int64
}

// lease leases e to ex for its next attempt.
func (t *leaseTable) lease(e *entry, ex *executor, est float64, cell *runCell) *lease {
	le := &lease{e: e, exec: ex, attempt: e.attempt + 1, est: est, cell: cell, heapAt: -1}
	ex.backlog += est
	t.leases[e.rec.ID] = le
	ex.leases[e.rec.ID] = le
	return le
}

// valid reports whether a result of attempt from ex answers a live lease
// (fencing: an expired, cancelled or moved lease, or an older attempt, is
// stale).
func (t *leaseTable) valid(id uint64, ex *executor, attempt int32) *lease {
	le := t.leases[id]
	if le == nil || le.exec != ex || le.attempt != attempt {
		return nil
	}
	return le
}

// end ends a lease whose executor stays: it is taken off its backlog, and
// the executor is idle from ts if it holds nothing else.
func (t *leaseTable) end(le *lease, ts int64) {
	t.drop(le)
	if len(le.exec.leases) == 0 {
		le.exec.idleSince = ts
	}
	le.exec.backlog = max(le.exec.backlog-le.est, 0)
}

// drop removes a lease from both tables (its executor is gone or starts
// afresh).
func (t *leaseTable) drop(le *lease) {
	delete(t.leases, le.e.rec.ID)
	delete(le.exec.leases, le.e.rec.ID)
	t.unwatch(le) // timeout.go
}
