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
// Leases: a granted task is leased to its executor. Any message from the
// executor renews all its leases; an executor silent for LeaseTTL loses them
// and its tasks are requeued with the attempt counted. Failed attempts are
// retried with exponential backoff up to the task's MaxAttempts, then dead.
package dispatch

import (
	"container/heap"
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
	return nil
}

type lease struct {
	e       *entry
	exec    *executor
	attempt int32
	est     float64 // estimated run time, ns (counted in exec.backlog)
	cell    *runCell
}

type executor struct {
	id       string
	slots    int32
	types    map[string]bool // nil: any type
	caps     map[string]string
	leases   map[uint64]*lease
	load     messages.LoadReport
	lastSeen int64
	runNanos float64 // EWMA of its tasks' run time
	parked   bool
	revoked  []uint64
	// state is messages.ExecActive, ExecSleeping or ExecDraining (evict.go).
	state     string
	idleSince int64           // when it last held no lease (unix ns)
	unhealthy string          // its own health check's failure, from its heartbeat
	asleep    bool            // told Grant{Sleep}: it pulls again only when woken
	backlog   float64         // sum of its leases' estimates, ns
	fits      map[string]bool // requirement shape → satisfied (canRun)
	inc       uint64          // Register.Incarnation
}

// GrantTo is a grant for one executor.
type GrantTo struct {
	Executor string
	Grant    messages.Grant
}

// Effects are what the shell must do after a step.
type Effects struct {
	Grants   []GrantTo
	Finished []task.Result            // terminal results of originals, to dedupe
	Attempts []store.AttemptUpdate    // failed attempts to persist before the retry
	Credit   [messages.NumClasses]int // queue places freed, to the pump
	Replies  []Reply                  // direct answers (Register, unknown executor)
	Stolen   []messages.Result        // results of stolen tasks, for their owner (stolen.go)
}

// Reply answers a request from an executor.
type Reply struct {
	Executor string
	Msg      any
}

// Machine is the dispatcher's state. It does no I/O.
type Machine struct {
	cfg      Config
	queues   [messages.NumClasses]queue
	delayed  delayed
	leases   map[uint64]*lease
	execs    map[string]*executor
	parked   []*executor
	perTask  map[string]float64 // learned load per task, by type
	schedule []messages.Class
	rr       int
	sleeping int // executors in state sleeping (evict.go)
	Counters task.DispatchCounters
	// Placement (placement.go).
	shapes map[asideKey]bool // type and requirement shape → some executor can run it
	aside  map[asideKey]*setAside
	asideN int
	runEst map[estKey]*runCell
}

// New returns an empty dispatcher.
func New(cfg Config) *Machine {
	m := &Machine{cfg: cfg, leases: map[uint64]*lease{}, execs: map[string]*executor{}, perTask: map[string]float64{},
		shapes: map[asideKey]bool{}, aside: map[asideKey]*setAside{}, runEst: map[estKey]*runCell{}}
	m.schedule = interleave(cfg.Weights) // H N L H N H N H H H for 6:3:1
	return m
}

func interleave(w [messages.NumClasses]int) []messages.Class {
	var out []messages.Class
	left := w
	for {
		added := false
		for c := range left {
			if left[c] > 0 {
				out = append(out, messages.Class(c))
				left[c]--
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// Enqueue queues originals from dedupe and serves parked executors.
func (m *Machine) Enqueue(now time.Time, tasks []task.Record) Effects {
	ts := now.UnixNano()
	for _, t := range tasks {
		e := &entry{rec: t, enqueued: ts, attempt: t.Attempts, holdsPlace: true}
		prepare(e)
		m.admit(ts, e)
	}
	var fx Effects
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
		delete(m.leases, id)
		delete(ex.leases, id)
		m.fail(now, le.e, le.attempt, fmt.Sprintf("executor %s registered again: its running tasks were lost", ex.id), false, &fx)
	}
	if !same {
		ex.revoked = nil // the tasks died with the old run
	}
	if !same || ex.state != messages.ExecDraining {
		m.setState(ex, messages.ExecActive) // evict.go
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
		if !ex.parked {
			ex.parked = true
			m.parked = append(m.parked, ex)
		}
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
				m.learn(le.e.rec.Type, sample)
			}
		}
	}
	for i := range results {
		m.result(now, ex, &results[i], fx)
	}
	return ex
}

func hostLoad(l messages.LoadReport) float64 { return max(l.CPU, l.Mem, l.IO) }

func (m *Machine) learn(typ string, sample float64) {
	const alpha = 0.2
	if old, ok := m.perTask[typ]; ok {
		m.perTask[typ] = alpha*sample + (1-alpha)*old
	} else {
		m.perTask[typ] = sample
	}
}

// PerTaskLoad is the learned load of one task of typ (0 if unknown).
func (m *Machine) PerTaskLoad(typ string) float64 { return m.perTask[typ] }

func (m *Machine) result(now time.Time, ex *executor, r *messages.Result, fx *Effects) {
	le := m.leases[r.TaskID]
	if le == nil || le.exec != ex || le.attempt != r.Attempt {
		m.Counters.Stale++ // fenced: the lease expired, was cancelled or moved
		return
	}
	delete(m.leases, r.TaskID)
	delete(ex.leases, r.TaskID)
	if len(ex.leases) == 0 {
		ex.idleSince = now.UnixNano()
	}
	ex.backlog = max(ex.backlog-le.est, 0)
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
	heap.Push(&m.delayed, &retry{at: now.Add(m.Backoff(attempt)).UnixNano(), e: e})
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

// grant picks work for ex per its quota.
func (m *Machine) grant(now time.Time, ex *executor, fx *Effects) messages.Grant {
	g := messages.Grant{LeaseTTLMillis: m.cfg.LeaseTTL.Milliseconds(), Cancel: ex.revoked}
	ex.revoked = nil
	if ex.state != messages.ExecActive {
		return g // sleeping or draining: no new work (evict.go)
	}
	held := len(ex.leases)
	waiting := m.buffer(ex)
	free := int(ex.slots) + waiting - held // granted whatever the load
	limit := min(int(ex.slots)+max(int(m.cfg.Prefetch*float64(ex.slots)), waiting)-held, m.cfg.MaxGrant)
	budget := m.cfg.MaxLoad - hostLoad(ex.load)
	ts := now.UnixNano()
	var blocked [messages.NumClasses]bool
	for n := 0; n < limit; n++ {
		e := m.next(ts, ex, &blocked)
		if e == nil {
			break
		}
		cell := m.cell(e)
		est := m.estimate(e, cell, ex)
		if n >= free {
			if m.betterElsewhere(ex, e, est) {
				m.queues[e.rec.Class].push(e) // another executor finishes it sooner
				break
			}
			cost := m.perTask[e.rec.Type]
			if cost <= 0 {
				cost = 1 / float64(ex.slots)
			}
			if budget < cost {
				m.queues[e.rec.Class].push(e) // no headroom: leave it for others
				break
			}
			budget -= cost
		}
		if e.holdsPlace {
			e.holdsPlace = false
			fx.Credit[e.rec.Class]++
		}
		m.Counters.Granted++
		le := &lease{e: e, exec: ex, attempt: e.attempt + 1, est: est, cell: cell}
		ex.backlog += est
		m.leases[e.rec.ID] = le
		ex.leases[e.rec.ID] = le
		g.Tasks = append(g.Tasks, messages.Task{ID: e.rec.ID, Type: e.rec.Type, Payload: e.rec.Payload, Priority: e.rec.Priority, Attempt: le.attempt})
	}
	return g
}

// buffer is how many waiting tasks ex gets whatever its load: MinPrefetch
// per slot, or enough to cover BufferTime of its learned run time, at most
// MaxBuffer per slot.
func (m *Machine) buffer(ex *executor) int {
	slots := float64(ex.slots)
	n := m.cfg.MinPrefetch * slots
	if m.cfg.BufferTime > 0 && ex.runNanos > 0 {
		perSlot := min(float64(m.cfg.BufferTime)/ex.runNanos, m.cfg.MaxBuffer)
		n = max(n, perSlot*slots)
	}
	return int(n)
}

// next pops the next task ex can run: an aged class first, else the
// weighted schedule. Tasks ex cannot run are skipped (up to ScanLimit per
// class) and stay queued.
func (m *Machine) next(ts int64, ex *executor, blocked *[messages.NumClasses]bool) *entry {
	for {
		c := m.pickClass(ts, blocked)
		if c < 0 {
			return nil
		}
		if e := m.popFor(messages.Class(c), ex); e != nil {
			return e
		}
		blocked[c] = true
	}
}

func (m *Machine) pickClass(ts int64, blocked *[messages.NumClasses]bool) int {
	best, oldest := -1, int64(0)
	for c := range m.queues {
		if blocked[c] {
			continue
		}
		if h := m.queues[c].peek(); h != nil && ts-h.enqueued > int64(m.cfg.AgingAfter) && (best < 0 || h.enqueued < oldest) {
			best, oldest = c, h.enqueued
		}
	}
	if best >= 0 {
		return best
	}
	for i := range m.schedule {
		c := m.schedule[(m.rr+i)%len(m.schedule)]
		if !blocked[c] && m.queues[c].Len() > 0 {
			m.rr = (m.rr + i + 1) % len(m.schedule)
			return int(c)
		}
	}
	return -1
}

func (m *Machine) popFor(c messages.Class, ex *executor) *entry {
	q := &m.queues[c]
	var skipped []*entry
	defer func() {
		for _, e := range skipped {
			q.push(e)
		}
	}()
	for q.Len() > 0 && len(skipped) < m.cfg.ScanLimit {
		e := q.pop()
		if ex.canRun(e) {
			return e
		}
		skipped = append(skipped, e)
	}
	return nil
}

func (ex *executor) canRun(e *entry) bool {
	if ex.types != nil && !ex.types[e.rec.Type] {
		return false
	}
	if e.shape == "" {
		return true // no requirements beyond a size
	}
	// Requirements are checked once per shape and registration: version
	// constraints are costly to parse.
	ok, hit := ex.fits[e.shape]
	if !hit {
		ok = ex.satisfies(e.rec.Requirements)
		if ex.fits == nil {
			ex.fits = map[string]bool{}
		}
		ex.fits[e.shape] = ok
	}
	return ok
}

// serveParked grants work to parked executors while there is any.
func (m *Machine) serveParked(now time.Time, fx *Effects) {
	defer m.wakeSleepers(now, fx) // work left over wakes sleeping executors (evict.go)
	if len(m.parked) == 0 || m.Queued() == 0 && !m.anyRevoked() {
		return
	}
	m.sortParked()
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

// anyRevoked reports whether a parked executor has revoked leases to hear of.
func (m *Machine) anyRevoked() bool {
	for _, ex := range m.parked {
		if len(ex.revoked) > 0 {
			return true
		}
	}
	return false
}

// Tick expires silent executors and releases due retries.
func (m *Machine) Tick(now time.Time) Effects {
	var fx Effects
	ts := now.UnixNano()
	left := false
	for _, id := range slices.Sorted(maps.Keys(m.execs)) { // sorted: deterministic effects
		ex := m.execs[id]
		if ts-ex.lastSeen <= int64(m.cfg.LeaseTTL) {
			continue
		}
		m.forget(ex) // evict.go
		left = true
		for _, tid := range slices.Sorted(maps.Keys(ex.leases)) {
			le := ex.leases[tid]
			delete(m.leases, tid)
			m.Counters.Expired++
			m.fail(now, le.e, le.attempt, fmt.Sprintf("lease expired: executor %s silent for %v", id, m.cfg.LeaseTTL), false, &fx)
		}
	}
	if left {
		m.executorsChanged(false)
		m.returnStolen(now, &fx)
	}
	for m.delayed.Len() > 0 && m.delayed[0].at <= ts {
		r := heap.Pop(&m.delayed).(*retry)
		r.e.enqueued = ts
		m.admit(ts, r.e)
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
			delete(m.leases, id)
			delete(le.exec.leases, id)
			if len(le.exec.leases) == 0 {
				le.exec.idleSince = now.UnixNano()
			}
			le.exec.backlog = max(le.exec.backlog-le.est, 0)
			le.exec.revoked = append(le.exec.revoked, id)
			if le.exec.asleep && le.exec.state != messages.ExecActive { // it does not pull: tell it now
				fx.Grants = append(fx.Grants, GrantTo{le.exec.id, m.sleepGrant(le.exec)})
			}
			e = le.e
		} else if x := m.removeAside(id); x != nil {
			e = x
		} else if i := slices.IndexFunc(m.delayed, func(r *retry) bool { return r.e.rec.ID == id }); i >= 0 {
			e = heap.Remove(&m.delayed, i).(*retry).e
		} else {
			for c := range m.queues {
				if x, ok := m.queues[c].remove(id); ok {
					e = x
					break
				}
			}
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
	if slices.ContainsFunc(m.delayed, func(r *retry) bool { return r.e.rec.ID == id }) {
		return messages.StateFailed
	}
	for c := range m.queues {
		if slices.ContainsFunc(m.queues[c], func(e *entry) bool { return e.rec.ID == id }) {
			return messages.StateQueued
		}
	}
	if m.asideN > 0 {
		if _, ok := m.asideOf(id); ok {
			return messages.StateQueued
		}
	}
	return messages.StateUnknown
}

// Known reports whether an executor is registered.
func (m *Machine) Known(id string) bool { return m.execs[id] != nil }

// Queued is the number of queued tasks over all classes.
func (m *Machine) Queued() int {
	n := 0
	for c := range m.queues {
		n += m.queues[c].Len()
	}
	return n
}

// QueueLen is one class's queue length.
func (m *Machine) QueueLen(c messages.Class) int { return m.queues[c].Len() }

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
func (m *Machine) Executors() []messages.ExecutorStatus {
	out := make([]messages.ExecutorStatus, 0, len(m.execs))
	for _, ex := range m.execs {
		st := messages.ExecutorStatus{ID: ex.id, Slots: ex.slots, Leases: int32(len(ex.leases)), Load: ex.load, LastSeen: ex.lastSeen / 1e6,
			State: ex.state, Unhealthy: ex.unhealthy,
			BacklogMillis: int64(ex.finish() / 1e6), Cloud: ex.caps[messages.CapCloud] == "true"}
		if len(ex.leases) == 0 {
			st.IdleSince = ex.idleSince / 1e6
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b messages.ExecutorStatus) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}
