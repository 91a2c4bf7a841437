package dispatch

import "time"

// Quota sizes one grant to an executor. The dispatcher opens an Allowance
// per grant, gives the executor Free tasks whatever its load, and past
// those asks Take before each further task, up to Limit (and
// Config.MaxGrant).
type Quota interface {
	Name() string
	// Open starts a grant to ex.
	Open(ex Executor) Allowance
	// Take reports whether a admits one more task past its free part, and
	// returns a charged with it. perTaskLoad is the learned load of one
	// task of its type (0 if nothing is learned yet). (a goes by value: a
	// pointer through the interface would cost each grant an allocation.)
	Take(a Allowance, ex Executor, perTaskLoad float64) (Allowance, bool)
}

// Allowance is one grant's quota.
type Allowance struct {
	Free   int     // tasks granted whatever the load
	Limit  int     // most tasks in this grant
	Budget float64 // the quota's own account between Take calls
}

// DefaultQuota is the quota used when Config.Quota is nil: the load quota
// with cfg's MaxLoad, Prefetch, MinPrefetch, BufferTime and MaxBuffer.
func DefaultQuota(cfg Config) Quota {
	return LoadQuota{MaxLoad: cfg.MaxLoad, Prefetch: cfg.Prefetch, MinPrefetch: cfg.MinPrefetch,
		BufferTime: cfg.BufferTime, MaxBuffer: cfg.MaxBuffer}
}

// LoadQuota is the rule of S0.4 (see Config for the fields): an executor
// always gets work for its free slots plus a buffer of waiting tasks
// (MinPrefetch per slot, or enough to cover BufferTime of its learned run
// time, at most MaxBuffer per slot); beyond that it prefetches while
// (MaxLoad − load) / load-per-task allows, up to Prefetch × slots.
type LoadQuota struct {
	MaxLoad, Prefetch, MinPrefetch float64
	BufferTime                     time.Duration
	MaxBuffer                      float64
}

func (LoadQuota) Name() string { return "load" }

func (q LoadQuota) Open(ex Executor) Allowance {
	slots, held := int(ex.x.slots), len(ex.x.leases)
	waiting := q.buffer(ex.x)
	return Allowance{
		Free:   slots + waiting - held,
		Limit:  slots + max(int(q.Prefetch*float64(ex.x.slots)), waiting) - held,
		Budget: q.MaxLoad - hostLoad(ex.x.load),
	}
}

func (q LoadQuota) Take(a Allowance, ex Executor, perTaskLoad float64) (Allowance, bool) {
	cost := perTaskLoad
	if cost <= 0 {
		cost = 1 / float64(ex.x.slots)
	}
	if a.Budget < cost {
		return a, false // no headroom: leave it for others
	}
	a.Budget -= cost
	return a, true
}

// buffer is how many waiting tasks ex gets whatever its load.
func (q LoadQuota) buffer(ex *executor) int {
	slots := float64(ex.slots)
	n := q.MinPrefetch * slots
	if q.BufferTime > 0 && ex.runNanos > 0 {
		perSlot := min(float64(q.BufferTime)/ex.runNanos, q.MaxBuffer)
		n = max(n, perSlot*slots)
	}
	return int(n)
}
