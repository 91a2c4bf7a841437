// Package dispatch holds the priority queues and hands work to executors in
// amounts that fit their live load (S2.1, S2.3, S0.4).
//
// Queues: high, normal and low classes, each a heap (priority, then age).
// Each grant walks a weighted schedule over the classes (default 6:3:1), so
// low work always gets a share; a class whose head has waited longer than
// AgingAfter goes first, so nothing starves behind a flood.
//
// Quota: an executor always gets work for its free slots. Beyond them the
// dispatcher prefetches while the executor's load headroom allows:
// (MaxLoad − current load) / load per task, the per-task load learned per
// task type as an EWMA of load / in-flight. A loaded host therefore holds no
// queue of its own: its extra work stays here, where an idle executor can
// take it. Prefetch never exceeds Prefetch × slots. MinPrefetch × slots
// tasks are prefetched whatever the load: waiting tasks add no load, and one
// waiting task per slot hides the grant round trip, so a slot never idles
// between tasks on a busy host.
//
// Placement is a chain in the Nomad scheduler's style: filters decide which
// executors can run a task (filter.go), rankers order those that can
// (rank.go), a quota sizes each grant (quota.go); each named in Config
// with a default. A task every executor is refused for is set aside, its
// reason naming which filter refused which executor.
//
// Leases: a granted task is leased to its executor. Any message from the
// executor renews all its leases; an executor silent for LeaseTTL loses them
// and its tasks are requeued with the attempt counted. Failed attempts are
// retried with exponential backoff up to the task's MaxAttempts, then dead.
package dispatch

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Config tunes the dispatcher.
type Config struct {
	// Capacity bounds each class's queue (high, normal, low). Default 20,000 each.
	Capacity [messages.NumClasses]int
	// Weights are the per-round selection counts of each class. Default 6, 3, 1.
	Weights [messages.NumClasses]int
	// AgingAfter promotes a class whose head has waited this long. Default 2 s.
	AgingAfter time.Duration
	// LeaseTTL is how long an executor may stay silent before its leases
	// expire. Default 15 s.
	LeaseTTL time.Duration
	// MaxLoad is the load (0..1, the max of CPU, memory and IO) up to which
	// work is prefetched beyond free slots. Default 0.9.
	MaxLoad float64
	// Prefetch caps what an executor may hold beyond its slots, in multiples
	// of its slots. Default 1.
	Prefetch float64
	// MinPrefetch is prefetched beyond free slots regardless of load, in
	// multiples of slots (at most Prefetch). Default 1.
	MinPrefetch float64
	// BufferTime raises the waiting tasks granted regardless of load to
	// cover this much of the executor's run time (learned from its results'
	// run times): short tasks get a deeper buffer, so slots never run dry
	// while the node waits for CPU, and no executor ever hoards more than
	// about BufferTime of work. 0 turns it off. Default 20 ms.
	BufferTime time.Duration
	// MaxBuffer caps that time-based buffer, in multiples of slots.
	// Default 16.
	MaxBuffer float64
	// MaxGrant bounds one grant. Default 512.
	MaxGrant int
	// RetryBase and RetryMax bound the retry backoff (base × 2^(attempt−1)).
	// Defaults 200 ms and 30 s.
	RetryBase, RetryMax time.Duration
	// ScanLimit bounds how many queued tasks one grant may skip because the
	// executor cannot run them. Default 256.
	ScanLimit int
	// Filters decide which executors can run a task (filter.go), in
	// order; the first to refuse an executor is named in an unplaceable
	// task's reason. nil: DefaultFilters() (type, capabilities, state,
	// pin).
	Filters []Filter
	// Rankers order the executors able to run work (rank.go). nil:
	// DefaultRankers() (estimated finish, then load).
	Rankers []Ranker
	// Quota sizes each grant (quota.go). nil: DefaultQuota(cfg), the load
	// quota with MaxLoad, Prefetch, MinPrefetch, BufferTime and MaxBuffer.
	Quota Quota
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Capacity:    [messages.NumClasses]int{20_000, 20_000, 20_000},
		Weights:     [messages.NumClasses]int{6, 3, 1},
		AgingAfter:  2 * time.Second,
		LeaseTTL:    15 * time.Second,
		MaxLoad:     0.9,
		Prefetch:    1,
		MinPrefetch: 1,
		BufferTime:  20 * time.Millisecond,
		MaxBuffer:   16,
		MaxGrant:    512,
		RetryBase:   200 * time.Millisecond,
		RetryMax:    30 * time.Second,
		ScanLimit:   256,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	for i := range c.Capacity {
		if c.Capacity[i] <= 0 {
			return fmt.Errorf("dispatch: Capacity[%s] must be > 0, got %d", messages.Class(i), c.Capacity[i])
		}
		if c.Weights[i] <= 0 {
			return fmt.Errorf("dispatch: Weights[%s] must be > 0, got %d", messages.Class(i), c.Weights[i])
		}
	}
	switch {
	case c.AgingAfter <= 0:
		return fmt.Errorf("dispatch: AgingAfter must be > 0, got %v", c.AgingAfter)
	case c.LeaseTTL <= 0:
		return fmt.Errorf("dispatch: LeaseTTL must be > 0, got %v", c.LeaseTTL)
	case c.MaxLoad <= 0 || c.MaxLoad > 1:
		return fmt.Errorf("dispatch: MaxLoad must be in (0, 1], got %v", c.MaxLoad)
	case c.Prefetch < 0:
		return fmt.Errorf("dispatch: Prefetch must be >= 0, got %v", c.Prefetch)
	case c.MinPrefetch < 0 || c.MinPrefetch > c.Prefetch:
		return fmt.Errorf("dispatch: MinPrefetch must be in [0, Prefetch=%v], got %v", c.Prefetch, c.MinPrefetch)
	case c.BufferTime < 0 || c.MaxBuffer < 0:
		return fmt.Errorf("dispatch: BufferTime and MaxBuffer must be >= 0, got %v and %v", c.BufferTime, c.MaxBuffer)
	case c.MaxGrant <= 0:
		return fmt.Errorf("dispatch: MaxGrant must be > 0, got %d", c.MaxGrant)
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return fmt.Errorf("dispatch: need 0 < RetryBase <= RetryMax, got %v and %v", c.RetryBase, c.RetryMax)
	case c.ScanLimit <= 0:
		return fmt.Errorf("dispatch: ScanLimit must be > 0, got %d", c.ScanLimit)
	}
	for i, f := range c.Filters {
		if f == nil {
			return fmt.Errorf("dispatch: Filters[%d] is nil", i)
		}
	}
	for i, r := range c.Rankers {
		if r == nil {
			return fmt.Errorf("dispatch: Rankers[%d] is nil", i)
		}
	}
	return nil
}

// GrantTo is a grant for one executor.
type GrantTo struct {
	Executor string
	Grant    messages.Grant
}

// Effects are what the shell must do after a step.
type Effects struct {
	Grants   []GrantTo
	Finished []task.Result         // terminal results of originals, to dedupe
	Attempts []store.AttemptUpdate // failed attempts to persist before the retry
	// Starts are the attempts this step started, one per granted task
	// that is not stolen: the shell makes them durable before it sends
	// Grants, so a run the node's death interrupts is counted.
	Starts  []store.AttemptUpdate
	Credit  [messages.NumClasses]int // queue places freed, to the pump
	Replies []Reply                  // direct answers (Register, unknown executor)
	Stolen  []messages.Result        // results of stolen tasks, for their owner (stolen.go)
}

// Reply answers a request from an executor.
type Reply struct {
	Executor string
	Msg      any
}

// Machine is the dispatcher's state. It does no I/O. It composes parts
// with one job each, embedded so their state reads as m.queues, m.leases,
// m.execs, m.aside: the class queues and retries (classes.go), the lease
// table (leases.go), the executor registry (registry.go), the set-aside
// lists (aside.go) and the run-time estimates (estimates.go); and the
// chain that places work: filters, rankers and a quota (filter.go,
// rank.go, quota.go). Machine decides what moves between the parts.
type Machine struct {
	cfg     Config
	filters []Filter
	rankers []Ranker
	quota   Quota
	classQueues
	leaseTable
	registry
	asideLists
	estimates
	pauseState
	Counters task.DispatchCounters
}

// New returns an empty dispatcher. Nil Filters, Rankers and Quota get
// their defaults.
func New(cfg Config) *Machine {
	m := &Machine{cfg: cfg, filters: cfg.Filters, rankers: cfg.Rankers, quota: cfg.Quota,
		classQueues: newClassQueues(cfg), leaseTable: leaseTable{leases: map[uint64]*lease{}},
		registry: newRegistry(), asideLists: newAsideLists(), estimates: estimates{runEst: map[estKey]*runCell{}},
		pauseState: pauseState{held: map[string][]*entry{}}}
	if m.filters == nil {
		m.filters = DefaultFilters()
	}
	if m.rankers == nil {
		m.rankers = DefaultRankers()
	}
	if m.quota == nil {
		m.quota = DefaultQuota(cfg)
	}
	return m
}

// InterruptedError is the error of a task found at start-up with all its
// attempts started and none finished (attempts, max attempts): the node
// stopped during its last attempt, perhaps because the task stopped it.
const InterruptedError = "attempt %d of %d was interrupted: the node stopped while it ran"

// Enqueue queues originals from dedupe and serves parked executors. A task
// whose record counts MaxAttempts started attempts (it was running when
// the node stopped) is dead at once.
func (m *Machine) Enqueue(now time.Time, tasks []task.Record) Effects {
	ts := now.UnixNano()
	var fx Effects
	for _, t := range tasks {
		e := &entry{rec: t, enqueued: ts, attempt: t.Attempts, holdsPlace: true}
		if t.MaxAttempts > 0 && t.Attempts >= t.MaxAttempts {
			// Every attempt started and none ended: the node stopped
			// while the last one ran (a task that kills its node ends
			// here rather than running forever).
			e.holdsPlace = false
			fx.Credit[t.Class]++
			m.Counters.Dead++
			fx.Finished = append(fx.Finished, m.final(now, e, messages.StateDead, nil, fmt.Sprintf(InterruptedError, t.Attempts, t.MaxAttempts), t.Attempts))
			continue
		}
		prepare(e)
		m.admit(ts, e)
	}
	m.serveParked(now, &fx)
	return fx
}

// Register adds or refreshes an executor.
func (m *Machine) Register(now time.Time, r *messages.Register) Effects {
	var fx Effects
	ex := m.execs[r.ExecutorID]
	known := ex != nil
	if ex == nil {
		ex = &executor{id: r.ExecutorID, leases: map[uint64]*lease{}}
		m.execs[r.ExecutorID] = ex
	}
	// A known executor registers again after it restarted: the tasks it
	// held died with it. Left leased, its new heartbeats would renew them
	// forever with nobody running them. The same incarnation registering
	// again only lost an answer: its tasks still run, keep them.
	same := r.Incarnation != 0 && r.Incarnation == ex.inc
	ex.inc = r.Incarnation
	for _, id := range slices.Sorted(maps.Keys(ex.leases)) {
		if same {
			break
		}
		le := ex.leases[id]
		m.leaseTable.drop(le)
		m.fail(now, le.e, le.attempt, fmt.Sprintf("executor %s registered again: its running tasks were lost", ex.id), false, &fx)
	}
	if !same {
		ex.revoked = nil // the tasks died with the old run
	}
	if !same || ex.state != messages.ExecDraining {
		m.registry.setState(ex, messages.ExecActive) // evict.go
	}
	ex.idleSince, ex.unhealthy, ex.asleep = now.UnixNano(), "", false
	if !same {
		ex.backlog = 0 // its leases were dropped above
	}
	ex.slots = max(r.Slots, 1)
	ex.caps = r.Capabilities
	ex.fits = nil
	ex.types = nil
	if len(r.Types) > 0 {
		ex.types = make(map[string]bool, len(r.Types))
		for _, t := range r.Types {
			ex.types[t] = true
		}
	}
	ex.lastSeen = now.UnixNano()
	if known { // it may have lost capabilities or types
		m.executorsChanged(false)
	}
	m.executorsChanged(true)
	fx.Replies = append(fx.Replies, Reply{r.ExecutorID, &messages.Registered{
		LeaseTTLMillis: m.cfg.LeaseTTL.Milliseconds(), HeartbeatMillis: (m.cfg.LeaseTTL / 5).Milliseconds(),
	}})
	return fx
}

// Pull takes an executor's results and load and grants it work; with none
// queued the pull is parked until work arrives.
func (m *Machine) Pull(now time.Time, p *messages.Pull) Effects {
	var fx Effects
	ex := m.touch(now, p.ExecutorID, p.Load, p.Results, &fx)
	if ex == nil {
		return fx
	}
	if ex.state == messages.ExecSleeping {
		fx.Grants = append(fx.Grants, GrantTo{ex.id, m.sleepGrant(ex)}) // evict.go
		return fx
	}
	g := m.grant(now, ex, &fx)
	if len(g.Tasks) == 0 && len(g.Cancel) == 0 {
		m.registry.park(ex)
	} else {
		ex.parked = false // answered: serveParked drops it from the list
		fx.Grants = append(fx.Grants, GrantTo{ex.id, g})
	}
	m.serveParked(now, &fx) // results may have freed retries for others
	return fx
}

// Heartbeat renews an executor's leases and takes its results.
func (m *Machine) Heartbeat(now time.Time, h *messages.Heartbeat) Effects {
	var fx Effects
	ex := m.touch(now, h.ExecutorID, h.Load, h.Results, &fx)
	if ex != nil {
		ex.unhealthy = h.Unhealthy
		m.reconcileStolen(now, ex, h.Held, &fx)
	}
	if ex != nil && ex.parked {
		m.serveParked(now, &fx)
	}
	return fx
}

// touch renews, updates load and applies results. It returns nil (and a
// reply asking to register) for an unknown executor.
func (m *Machine) touch(now time.Time, id string, load messages.LoadReport, results []messages.Result, fx *Effects) *executor {
	ex := m.execs[id]
	if ex == nil {
		m.Counters.Stale += int64(len(results))
		fx.Replies = append(fx.Replies, Reply{id, &messages.Grant{Err: messages.Errorf(messages.CodeUnknownExecutor, "executor %q is not registered with this node; register again", id)}})
		return nil
	}
	ex.lastSeen = now.UnixNano()
	ex.load = load
	if l := hostLoad(load); load.InFlight > 0 {
		sample := l / float64(load.InFlight)
		for _, r := range results {
			if le := m.leases[r.TaskID]; le != nil {
				m.registry.learn(le.e.rec.Type, sample)
			}
		}
	}
	for i := range results {
		m.result(now, ex, &results[i], fx)
	}
	return ex
}

// lostGrantAfter is how long a grant may take to reach a stealer before a
// heartbeat that does not list it counts it lost.
const lostGrantAfter = 5 * time.Second

// reconcileStolen requeues what a peer's stealer was granted but does not
// hold. A stealer lists every task it holds from this node in every
// heartbeat (cluster/steal), so a lease it does not list, granted long
// enough ago for the grant to have arrived, is a grant lost on the way (a
// remote endpoint reconnecting drops messages): left alone, the stealer's
// heartbeats would renew it forever with nobody running it. Other
// executors list what they hold only in some heartbeats, so only
// stealers are reconciled.
func (m *Machine) reconcileStolen(now time.Time, ex *executor, held []uint64, fx *Effects) {
	if !messages.IsStealExecutor(ex.id) || len(ex.leases) == 0 {
		return
	}
	has := make(map[uint64]bool, len(held))
	for _, id := range held {
		has[id] = true
	}
	cutoff := now.UnixNano() - int64(lostGrantAfter)
	for _, id := range slices.Sorted(maps.Keys(ex.leases)) {
		le := ex.leases[id]
		if has[id] || le.granted > cutoff {
			continue
		}
		m.leaseTable.drop(le)
		m.fail(now, le.e, le.attempt, fmt.Sprintf("stealer %s does not hold it: the grant was lost", ex.id), false, fx)
	}
}

// PerTaskLoad is the learned load of one task of typ (0 if unknown).
func (m *Machine) PerTaskLoad(typ string) float64 { return m.perTask[typ] }

func (m *Machine) result(now time.Time, ex *executor, r *messages.Result, fx *Effects) {
	le := m.leaseTable.valid(r.TaskID, ex, r.Attempt)
	if le == nil {
		m.Counters.Stale++ // fenced: the lease expired, was cancelled or moved
		return
	}
	m.leaseTable.end(le, now.UnixNano())
	if r.RunNanos > 0 {
		le.cell.learn(r.RunNanos)
		const alpha = 0.1
		if ex.runNanos == 0 {
			ex.runNanos = float64(r.RunNanos)
		} else {
			ex.runNanos = alpha*float64(r.RunNanos) + (1-alpha)*ex.runNanos
		}
	}
	if le.e.stolen {
		m.stolenResult(*r, fx)
		return
	}
	if r.OK {
		m.Counters.Completed++
		fx.Finished = append(fx.Finished, m.final(now, le.e, messages.StateDone, r.Output, "", r.Attempt))
		return
	}
	m.Counters.Failed++
	m.fail(now, le.e, r.Attempt, r.Error, r.Permanent, fx)
}

// fail handles a failed attempt: retry with backoff, or dead.
func (m *Machine) fail(now time.Time, e *entry, attempt int32, msg string, permanent bool, fx *Effects) {
	if e.stolen {
		m.stolenResult(messages.Result{TaskID: e.rec.ID, Attempt: attempt, Error: msg, Permanent: permanent}, fx)
		return
	}
	e.attempt = attempt
	if permanent || attempt >= e.rec.MaxAttempts {
		m.Counters.Dead++
		fx.Finished = append(fx.Finished, m.final(now, e, messages.StateDead, nil, msg, attempt))
		return
	}
	m.Counters.Retried++
	fx.Attempts = append(fx.Attempts, store.AttemptUpdate{ID: e.rec.ID, Attempts: attempt})
	m.classQueues.retry(now.Add(m.Backoff(attempt)).UnixNano(), e)
}

// Backoff is the delay before retrying after the given failed attempt.
func (m *Machine) Backoff(attempt int32) time.Duration {
	d := m.cfg.RetryBase
	for i := int32(1); i < attempt && d < m.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.cfg.RetryMax)
}

func (m *Machine) final(now time.Time, e *entry, s messages.TaskState, out []byte, msg string, attempts int32) task.Result {
	return task.Result{ID: e.rec.ID, Class: e.rec.Class, Digest: e.rec.Digest, State: s,
		Output: out, Error: msg, Attempts: attempts, FinishedAt: now.UnixNano()}
}

// grant picks work for ex: tasks the filters pass, in class order, as many
// as the quota allows; past the quota's free part, only tasks no other
// executor would rank before ex for (betterElsewhere).
func (m *Machine) grant(now time.Time, ex *executor, fx *Effects) messages.Grant {
	g := messages.Grant{LeaseTTLMillis: m.cfg.LeaseTTL.Milliseconds(), Cancel: ex.revoked}
	ex.revoked = nil
	if ex.state != messages.ExecActive {
		return g // sleeping or draining: no new work (evict.go)
	}
	view := Executor{ex}
	a := m.quota.Open(view)
	free, limit := a.Free, min(a.Limit, m.cfg.MaxGrant)
	ts := now.UnixNano()
	blocked := m.pausedClasses() // pause.go
	fits := func(e *entry) bool { return m.canRun(ex, e) && !m.pausedType(e) }
	for n := 0; n < limit; n++ {
		e := m.classQueues.next(ts, &blocked, fits)
		if e == nil {
			break
		}
		cell := m.cell(e)
		est := m.estimate(e, cell, ex)
		if n >= free {
			if m.betterElsewhere(ex, e, est) {
				m.classQueues.push(e) // another executor finishes it sooner
				break
			}
			var ok bool
			if a, ok = m.quota.Take(a, view, m.perTask[e.rec.Type]); !ok {
				m.classQueues.push(e) // no headroom: leave it for others
				break
			}
		}
		if e.holdsPlace {
			e.holdsPlace = false
			fx.Credit[e.rec.Class]++
		}
		m.Counters.Granted++
		le := m.leaseTable.lease(e, ex, est, cell)
		le.granted = ts
		m.leaseTable.watch(le, ts) // its run timeout, if any (timeout.go)
		if !e.stolen {             // a stolen task's owner counts its attempts
			fx.Starts = append(fx.Starts, store.AttemptUpdate{ID: e.rec.ID, Attempts: le.attempt})
		}
		g.Tasks = append(g.Tasks, messages.Task{ID: e.rec.ID, Type: e.rec.Type, Payload: e.rec.Payload, Priority: e.rec.Priority, Attempt: le.attempt,
			TimeoutMillis: e.rec.TimeoutMillis})
	}
	return g
}

// serveParked grants work to parked executors, in the rankers' order,
// while there is any.
func (m *Machine) serveParked(now time.Time, fx *Effects) {
	defer m.wakeSleepers(now, fx) // work left over wakes sleeping executors (evict.go)
	if len(m.parked) == 0 || m.Queued() == 0 && !m.registry.anyRevoked() {
		return
	}
	m.registry.sortParked(m.rankers)
	keep := m.parked[:0]
	for _, ex := range m.parked {
		if m.execs[ex.id] != ex || !ex.parked {
			continue // expired, or its pull was answered directly
		}
		g := m.grant(now, ex, fx)
		if len(g.Tasks) == 0 && len(g.Cancel) == 0 {
			keep = append(keep, ex)
			continue
		}
		ex.parked = false
		fx.Grants = append(fx.Grants, GrantTo{ex.id, g})
	}
	clear(m.parked[len(keep):])
	m.parked = keep
}

// Tick expires silent executors and releases due retries.
func (m *Machine) Tick(now time.Time) Effects {
	var fx Effects
	ts := now.UnixNano()
	silent := m.registry.silent(ts, int64(m.cfg.LeaseTTL))
	for _, ex := range silent {
		m.registry.forget(ex)
		for _, tid := range slices.Sorted(maps.Keys(ex.leases)) {
			le := ex.leases[tid]
			m.leaseTable.drop(le)
			m.Counters.Expired++
			m.fail(now, le.e, le.attempt, fmt.Sprintf("lease expired: executor %s silent for %v", ex.id, m.cfg.LeaseTTL), false, &fx)
		}
	}
	if len(silent) > 0 {
		m.executorsChanged(false)
		m.returnStolen(now, &fx)
	}
	m.expireTimeouts(now, &fx) // timeout.go
	for e := m.classQueues.due(ts); e != nil; e = m.classQueues.due(ts) {
		e.enqueued = ts
		m.admit(ts, e)
	}
	m.serveParked(now, &fx)
	return fx
}

// Cancel removes tasks from the queues, the retry list or their leases and
// returns their cancelled results. Ids it does not hold are ignored.
func (m *Machine) Cancel(now time.Time, ids []uint64) Effects {
	var fx Effects
	for _, id := range ids {
		var e *entry
		if le := m.leases[id]; le != nil {
			m.leaseTable.end(le, now.UnixNano())
			le.exec.revoked = append(le.exec.revoked, id)
			if le.exec.asleep && le.exec.state != messages.ExecActive { // it does not pull: tell it now
				fx.Grants = append(fx.Grants, GrantTo{le.exec.id, m.sleepGrant(le.exec)})
			}
			e = le.e
		} else if x := m.asideLists.remove(id); x != nil {
			e = x
		} else if x := m.pauseState.remove(id); x != nil { // pause.go
			e = x
		} else if x := m.classQueues.removeRetry(id); x != nil {
			e = x
		} else {
			e = m.classQueues.remove(id)
		}
		if e == nil {
			continue
		}
		if e.holdsPlace {
			e.holdsPlace = false
			fx.Credit[e.rec.Class]++
		}
		if e.stolen {
			continue // its owner revoked it: the owner records the outcome
		}
		m.Counters.Cancelled++
		fx.Finished = append(fx.Finished, m.final(now, e, messages.StateCancelled, nil, "cancelled by client", e.attempt))
	}
	m.serveParked(now, &fx)
	return fx
}

// State reports where id is: queued, leased, failed (waiting to retry), or
// unknown to the dispatcher.
func (m *Machine) State(id uint64) messages.TaskState {
	if m.leases[id] != nil {
		return messages.StateLeased
	}
	if m.classQueues.retrying(id) {
		return messages.StateFailed
	}
	if m.classQueues.has(id) {
		return messages.StateQueued
	}
	if _, g := m.asideLists.of(id); g != nil {
		return messages.StateQueued
	}
	if m.pauseState.holds(id) {
		return messages.StateQueued
	}
	return messages.StateUnknown
}

// Known reports whether an executor is registered.
func (m *Machine) Known(id string) bool { return m.execs[id] != nil }

// Queued is the number of queued tasks over all classes.
func (m *Machine) Queued() int { return m.classQueues.queued() }

// QueueLen is one class's queue length, the tasks a pause holds back
// included.
func (m *Machine) QueueLen(c messages.Class) int { return m.queues[c].Len() + m.pauseState.n[c] }

// Leases is the number of live leases.
func (m *Machine) Leases() int { return len(m.leases) }

// HeldBy is how many leases executor id holds (0 if unknown).
func (m *Machine) HeldBy(id string) int {
	if ex := m.execs[id]; ex != nil {
		return len(ex.leases)
	}
	return 0
}

// Executors describes the attached executors.
func (m *Machine) Executors() []messages.ExecutorStatus { return m.registry.statuses() }
