package dispatch

import (
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Work stealing, the local half. An idle node's stealer leases tasks from a
// loaded peer (as the pseudo-executor steal/<node> on the peer's
// dispatcher) and queues them here with task.EnqueueStolen. Local executors run
// them like any task; their results do not go to dedupe (the task is not
// this node's) but out as Effects.Stolen, which the stealer reports to the
// peer under the peer's lease. A stolen task never retries here: a failed
// attempt, an expired local lease or a re-registered executor is reported
// as a failed attempt, and the owner decides about the retry. A stolen task
// the owner revokes (cancel, expired steal lease) is dropped silently.

// task.EnqueueStolen queues tasks leased from another node. Their Attempts field
// is the attempt the owner granted minus one, so the local lease reports the
// owner's attempt number. A task whose id this dispatcher already knows is
// refused at once as a failed attempt (ids of distinct nodes never collide;
// this guards against a misconfigured cluster).
func (m *Machine) EnqueueStolen(now time.Time, tasks []task.Record) Effects {
	var fx Effects
	ts := now.UnixNano()
	for _, t := range tasks {
		if m.leases[t.ID] != nil || m.State(t.ID) != messages.StateUnknown {
			m.stolenResult(messages.Result{TaskID: t.ID, Attempt: t.Attempts + 1, Error: "stolen task id already known at the stealing node"}, &fx)
			continue
		}
		e := &entry{rec: t, enqueued: ts, attempt: t.Attempts, stolen: true}
		prepare(e)
		m.admit(ts, e)
	}
	m.returnStolen(now, &fx)
	m.serveParked(now, &fx)
	return fx
}

func (m *Machine) stolenResult(r messages.Result, fx *Effects) {
	fx.Stolen = append(fx.Stolen, r)
}

// Types lists the task types the attached executors run, sorted; any is
// true when one of them runs every type.
func (m *Machine) Types() (types []string, any bool) {
	set := map[string]bool{}
	for id, ex := range m.execs {
		if messages.IsStealExecutor(id) {
			continue
		}
		if ex.types == nil {
			any = true
		}
		for t := range ex.types {
			set[t] = true
		}
	}
	for t := range set {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, any
}

// FreeSlots is the attached executors' slots not holding a lease.
func (m *Machine) FreeSlots() int {
	n := 0
	for id, ex := range m.execs {
		if messages.IsStealExecutor(id) || ex.state == messages.ExecDraining {
			continue // another node's capacity, or taking no new work
		}
		n += max(int(ex.slots)-len(ex.leases), 0)
	}
	return n
}

// returnStolen hands queued stolen tasks back to their owner (a failed
// attempt) when no local executor that takes work can run them: the
// stealer's heartbeats would otherwise renew the owner's lease forever.
func (m *Machine) returnStolen(now time.Time, fx *Effects) {
	for c := range m.queues {
		q := &m.queues[c]
		var back []*entry
		for _, e := range *q {
			if e.stolen && !m.runnableHere(e) {
				back = append(back, e)
			}
		}
		for _, e := range back {
			q.remove(e.rec.ID)
			m.fail(now, e, e.attempt+1, "no executor at the stealing node can run it any more", false, fx)
		}
	}
}

func (m *Machine) runnableHere(e *entry) bool {
	for id, ex := range m.execs {
		if !messages.IsStealExecutor(id) && ex.state != messages.ExecDraining && m.canRun(ex, e) {
			return true
		}
	}
	return false
}
