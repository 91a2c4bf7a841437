package dispatch

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
)

// Eviction, sleep, wake and drain (S2.7, S2.8, S2.10). The supervisor
// (actors/supervisor) decides; the dispatcher carries it out, because it
// owns the leases and the queues.
//
// task.Evict is the one way leases leave a failed executor before their TTL:
// the executor is forgotten, each lease goes back to the front of its queue
// at once (no retry backoff: the executor failed, not necessarily the task;
// queues order by priority then id, so an old task is near the front)
// with the attempt counted, so a task that kills every executor that runs
// it still ends dead after MaxAttempts. A result the evicted executor sends
// later is fenced (counted stale): its lease is gone. If it is still alive
// it is told to register again, and comes back active.
//
// A sleeping executor gets no grants: its pull is answered with
// Grant{Sleep} and it only heartbeats, every SleepHeartbeat. It is woken —
// a grant without Sleep — as soon as work it can run is still queued after
// every parked active executor was served. A draining executor gets no new
// work; its leases run to the end.

// SleepHeartbeat is how often a sleeping executor heartbeats: half the
// lease TTL, so the dispatcher never expires it.
func (m *Machine) SleepHeartbeat() time.Duration { return m.cfg.LeaseTTL / 2 }

// task.Evict forgets an executor and requeues its leases at once. Unknown
// executors are ignored (it may have expired or been evicted already).
func (m *Machine) Evict(now time.Time, id, reason string) Effects {
	var fx Effects
	ex := m.execs[id]
	if ex == nil {
		return fx
	}
	m.registry.forget(ex)
	ex.parked = false // serveParked drops it from the list
	ts := now.UnixNano()
	for _, tid := range slices.Sorted(maps.Keys(ex.leases)) {
		le := ex.leases[tid]
		m.leaseTable.drop(le)
		m.Counters.Evicted++
		msg := fmt.Sprintf("executor %s evicted: %s", id, reason)
		e := le.e
		if e.stolen || le.attempt >= e.rec.MaxAttempts {
			m.fail(now, e, le.attempt, msg, false, &fx) // stolen: its owner decides; else dead
			continue
		}
		e.attempt = le.attempt
		fx.Attempts = append(fx.Attempts, store.AttemptUpdate{ID: e.rec.ID, Attempts: e.attempt})
		e.enqueued = ts
		m.enqueue(e)
	}
	m.executorsChanged(false) // tasks only it could run are set aside
	m.returnStolen(now, &fx)
	m.serveParked(now, &fx)
	return fx
}

// task.SetState makes a known executor active, sleeping or draining. Waking a
// sleeping executor grants it work (or an empty grant) so it pulls again;
// putting a parked executor to sleep answers its pull with Grant{Sleep}.
func (m *Machine) SetState(now time.Time, id, state string) (Effects, error) {
	var fx Effects
	ex := m.execs[id]
	if ex == nil {
		return fx, messages.Errorf(messages.CodeNotFound, "executor %q is not attached to this node", id)
	}
	if ex.state == state {
		return fx, nil
	}
	if old := ex.state; old == messages.ExecDraining || state == messages.ExecDraining {
		// A draining executor takes no new work, so it does not count
		// as able to run anything (placement.go).
		defer func() { m.executorsChanged(state != messages.ExecDraining) }()
	}
	switch state {
	case messages.ExecSleeping:
		if ex.state != messages.ExecActive {
			return fx, messages.Errorf(messages.CodeInvalid, "executor %q is %s; only an active executor can sleep", id, ex.state)
		}
		m.registry.setState(ex, state)
		m.Counters.Slept++
		if ex.parked {
			ex.parked = false
			fx.Grants = append(fx.Grants, GrantTo{ex.id, m.sleepGrant(ex)})
		}
	case messages.ExecDraining:
		m.registry.setState(ex, state) // a sleeping executor stays quiet: it holds nothing
		m.returnStolen(now, &fx)
	case messages.ExecActive:
		m.wake(now, ex, &fx)
		m.serveParked(now, &fx)
	default:
		return fx, messages.Errorf(messages.CodeInvalid, "executor state %q: want active, sleeping or draining", state)
	}
	return fx, nil
}

func (m *Machine) sleepGrant(ex *executor) messages.Grant {
	g := messages.Grant{LeaseTTLMillis: m.cfg.LeaseTTL.Milliseconds(), Cancel: ex.revoked, Sleep: true,
		HeartbeatMillis: m.SleepHeartbeat().Milliseconds()}
	ex.revoked = nil
	ex.asleep = true
	return g
}

// wake makes ex active; one told to sleep (even if drained since) is sent
// a grant (maybe empty) that ends its sleep.
func (m *Machine) wake(now time.Time, ex *executor, fx *Effects) {
	m.registry.setState(ex, messages.ExecActive)
	if !ex.asleep {
		return
	}
	ex.asleep = false
	m.Counters.Woken++
	fx.Grants = append(fx.Grants, GrantTo{ex.id, m.grant(now, ex, fx)})
}

// wakeSleepers wakes sleeping executors, in id order, while queued work
// one of them can run is left.
func (m *Machine) wakeSleepers(now time.Time, fx *Effects) {
	if m.sleeping == 0 || m.Queued() == 0 {
		return
	}
	var sleeping []*executor
	for _, ex := range m.execs {
		if ex.state == messages.ExecSleeping {
			sleeping = append(sleeping, ex)
		}
	}
	slices.SortFunc(sleeping, func(a, b *executor) int { return cmpString(a.id, b.id) })
	for _, ex := range sleeping {
		if m.Queued() == 0 {
			return
		}
		if m.queuedFor(ex) {
			m.wake(now, ex, fx)
		}
	}
}

// queuedFor reports whether a queued task (among the first ScanLimit of
// each class) can run on ex.
func (m *Machine) queuedFor(ex *executor) bool {
	return m.classQueues.anyFor(func(e *entry) bool { return m.canRun(ex, e) && !m.paused.Class(e.rec.Class) })
}

// StateOf is an executor's state ("" if unknown) and lease count.
func (m *Machine) StateOf(id string) (string, int) {
	if ex := m.execs[id]; ex != nil {
		return ex.state, len(ex.leases)
	}
	return "", 0
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
