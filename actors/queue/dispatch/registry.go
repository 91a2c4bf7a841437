package dispatch

import (
	"maps"
	"slices"

	"github.com/shoalrt/shoal/messages"
)

// registry is the attached executors: their registration and state, the
// load per task learned from their reports, and the pulls parked waiting
// for work. It decides nothing about tasks.
type registry struct {
	execs    map[string]*executor
	parked   []*executor
	perTask  map[string]float64 // learned load per task, by type
	sleeping int                // executors in state sleeping (evict.go)
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
	idleSince int64             // when it last held no lease (unix ns)
	unhealthy string            // its own health check's failure, from its heartbeat
	asleep    bool              // told Grant{Sleep}: it pulls again only when woken
	backlog   float64           // sum of its leases' estimates, ns
	fits      map[asideKey]bool // type and requirement shape → the filters pass it (canRun)
	inc       uint64            // Register.Incarnation
}

func newRegistry() registry {
	return registry{execs: map[string]*executor{}, perTask: map[string]float64{}}
}

// finish is ex's estimated time to drain its backlog, per slot.
func (ex *executor) finish() float64 { return ex.backlog / float64(ex.slots) }

func hostLoad(l messages.LoadReport) float64 { return max(l.CPU, l.Mem, l.IO) }

// learn folds a sample of the load one task of typ adds into its EWMA.
func (r *registry) learn(typ string, sample float64) {
	const alpha = 0.2
	if old, ok := r.perTask[typ]; ok {
		r.perTask[typ] = alpha*sample + (1-alpha)*old
	} else {
		r.perTask[typ] = sample
	}
}

// setState changes ex's state, keeping the count of sleepers (which spares
// every grant a walk over the executors when nobody sleeps). Filters may
// depend on the state: their cached answers go.
func (r *registry) setState(ex *executor, state string) {
	if ex.state == messages.ExecSleeping {
		r.sleeping--
	}
	if state == messages.ExecSleeping {
		r.sleeping++
	}
	if ex.state != state {
		ex.fits = nil
	}
	ex.state = state
}

// forget removes ex from the attached executors.
func (r *registry) forget(ex *executor) {
	r.setState(ex, "")
	delete(r.execs, ex.id)
}

// park keeps ex's pull until work arrives.
func (r *registry) park(ex *executor) {
	if !ex.parked {
		ex.parked = true
		r.parked = append(r.parked, ex)
	}
}

// silent lists, in id order, the executors not heard from since before ts.
func (r *registry) silent(ts, ttl int64) []*executor {
	var out []*executor
	for _, id := range slices.Sorted(maps.Keys(r.execs)) { // sorted: deterministic effects
		if ex := r.execs[id]; ts-ex.lastSeen > ttl {
			out = append(out, ex)
		}
	}
	return out
}

// sorted lists the executors in id order.
func (r *registry) sorted() []*executor {
	out := make([]*executor, 0, len(r.execs))
	for _, id := range slices.Sorted(maps.Keys(r.execs)) {
		out = append(out, r.execs[id])
	}
	return out
}

// sortParked orders parked executors by the rankers.
func (r *registry) sortParked(rankers []Ranker) {
	if len(r.parked) < 2 || len(rankers) == 0 {
		return
	}
	slices.SortStableFunc(r.parked, func(a, b *executor) int { return before(rankers, a, b) })
}

// anyRevoked reports whether a parked executor has revoked leases to hear of.
func (r *registry) anyRevoked() bool {
	for _, ex := range r.parked {
		if len(ex.revoked) > 0 {
			return true
		}
	}
	return false
}

// statuses describes the attached executors, by id.
func (r *registry) statuses() []messages.ExecutorStatus {
	out := make([]messages.ExecutorStatus, 0, len(r.execs))
	for _, ex := range r.execs {
		st := messages.ExecutorStatus{ID: ex.id, Slots: ex.slots, Leases: int32(len(ex.leases)), Load: ex.load, LastSeen: ex.lastSeen / 1e6,
			State: ex.state, Unhealthy: ex.unhealthy,
			BacklogMillis: int64(ex.finish() / 1e6), Cloud: ex.caps[messages.CapCloud] == "true", Kind: ex.caps[messages.CapKind]}
		if len(ex.leases) == 0 {
			st.IdleSince = ex.idleSince / 1e6
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b messages.ExecutorStatus) int { return cmpString(a.ID, b.ID) })
	return out
}
