package dispatch

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Run timeouts. A task with a timeout (task.Record.TimeoutMillis, its own
// or its type's default at intake) is leased with a deadline: the grant
// time plus the timeout. Tick fails an attempt still leased at its
// deadline, whatever its executor's heartbeats say: the lease is revoked
// (Grant.Cancel, which cancels the handler's context: sdk/executor, and
// HTTP agents through the agent actor's cancel list) and the attempt fails
// with a timeout error, retried with backoff up to MaxAttempts like any
// failure. A result of the timed-out attempt arriving later is stale
// (fenced). The executor enforces the timeout too (Task.TimeoutMillis),
// so a handler that watches its context ends even if the revoke is lost.
//
// Deadlines sit in a min-heap beside the lease table; a lease that ends
// first (result, cancel, expiry, eviction) leaves the heap at once
// (leaseTable.drop), so the heap holds only live timed leases however long
// their timeouts.

// TimeoutPrefix starts the error of an attempt failed by its run timeout.
const TimeoutPrefix = "timeout: "

// deadlines orders timed leases by deadline (unix ns).
type deadlines []*lease

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].deadline < d[j].deadline }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].heapAt, d[j].heapAt = i, j
}
func (d *deadlines) Push(x any) {
	le := x.(*lease)
	le.heapAt = len(*d)
	*d = append(*d, le)
}
func (d *deadlines) Pop() any {
	old := *d
	le := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	le.heapAt = -1
	return le
}

// unwatch takes le's deadline out of the heap (its lease ended).
func (t *leaseTable) unwatch(le *lease) {
	if le.deadline != 0 && le.heapAt >= 0 && le.heapAt < len(t.deadlines) && t.deadlines[le.heapAt] == le {
		heap.Remove(&t.deadlines, le.heapAt)
	}
}

// watch gives le a deadline ts + its task's timeout, if it has one.
func (t *leaseTable) watch(le *lease, ts int64) {
	ms := le.e.rec.TimeoutMillis
	if ms <= 0 {
		return
	}
	le.deadline = ts + ms*int64(time.Millisecond)
	heap.Push(&t.deadlines, le)
}

// overdue pops the next live lease whose deadline is at or before ts (nil
// if none).
func (t *leaseTable) overdue(ts int64) *lease {
	if len(t.deadlines) == 0 || t.deadlines[0].deadline > ts {
		return nil
	}
	return heap.Pop(&t.deadlines).(*lease)
}

// expireTimeouts fails the attempts past their deadline and revokes their
// leases.
func (m *Machine) expireTimeouts(now time.Time, fx *Effects) {
	ts := now.UnixNano()
	for le := m.leaseTable.overdue(ts); le != nil; le = m.leaseTable.overdue(ts) {
		ex, id := le.exec, le.e.rec.ID
		m.leaseTable.end(le, ts)
		ex.revoked = append(ex.revoked, id)
		if ex.asleep && ex.state != messages.ExecActive { // it does not pull: tell it now
			fx.Grants = append(fx.Grants, GrantTo{ex.id, m.sleepGrant(ex)})
		}
		m.Counters.TimedOut++
		timeout := time.Duration(le.e.rec.TimeoutMillis) * time.Millisecond
		m.fail(now, le.e, le.attempt, fmt.Sprintf("%sattempt %d on executor %s ran past its %v timeout", TimeoutPrefix, le.attempt, ex.id, timeout), false, fx)
	}
}
