package dispatch

import (
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Executor is a read-only view of a registered executor, what filters,
// rankers and the quota see. It is a value: passing it costs nothing.
type Executor struct{ x *executor }

// ID is the executor's id.
func (e Executor) ID() string { return e.x.id }

// Serves reports whether it runs tasks of typ.
func (e Executor) Serves(typ string) bool { return e.x.types == nil || e.x.types[typ] }

// Capability is the value of one of its capabilities ("" if it has none).
func (e Executor) Capability(key string) string { return e.x.caps[key] }

// State is messages.ExecActive, ExecSleeping or ExecDraining.
func (e Executor) State() string { return e.x.state }

// Slots is its declared concurrency (at least 1).
func (e Executor) Slots() int { return int(e.x.slots) }

// Held is how many leases it holds.
func (e Executor) Held() int { return len(e.x.leases) }

// Load is its latest load report.
func (e Executor) Load() messages.LoadReport { return e.x.load }

// RunTime is the EWMA of its tasks' run times (0 before its first result).
func (e Executor) RunTime() time.Duration { return time.Duration(e.x.runNanos) }

// Finish is its estimated time to drain its backlog, per slot, in ns: the
// sum of its leases' run-time estimates over its slots.
func (e Executor) Finish() float64 { return e.x.finish() }

// Ranker scores executors that can run a task; lower is better. Parked
// executors are served in the order of the rankers, each breaking the
// ties of the one before; and work granted beyond an executor's quota's
// free part goes only to an executor that the first ranker puts no later
// than every other able to take it.
type Ranker interface {
	Name() string
	// Rank scores ex for a task estimated to run est ns on it (0 when
	// executors are ordered with no task in view).
	Rank(ex Executor, est float64) float64
}

// DefaultRankers is the chain used when Config.Rankers is nil: estimated
// finish, then load.
func DefaultRankers() []Ranker { return []Ranker{FinishRanker{}, LoadRanker{}} }

// FinishRanker ranks by estimated finish: the executor's backlog per slot
// plus the task's estimated run time on it (run times learned per task
// type and size bucket, placement.go).
type FinishRanker struct{}

func (FinishRanker) Name() string                          { return "finish" }
func (FinishRanker) Rank(ex Executor, est float64) float64 { return ex.x.finish() + est }

// LoadRanker ranks by host load: the max of CPU, memory and IO (0..1).
type LoadRanker struct{}

func (LoadRanker) Name() string                        { return "load" }
func (LoadRanker) Rank(ex Executor, _ float64) float64 { return hostLoad(ex.x.load) }

// before compares a and b by the rankers in order (-1: a first).
func before(rankers []Ranker, a, b *executor) int {
	for _, r := range rankers {
		ra, rb := r.Rank(Executor{a}, 0), r.Rank(Executor{b}, 0)
		switch {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
	}
	return 0
}
