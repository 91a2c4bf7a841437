package route

import (
	"time"

	"github.com/shoalrt/shoal/messages"
)

// LoadOf is the load report a node gossips, from its status: queue depth
// per class, standby, attached executors, their free slots (slots minus
// leases, never below 0) and the given drain rate. At is left to the caller.
func LoadOf(st *messages.Status, drain float64) messages.NodeLoad {
	l := messages.NodeLoad{Standby: st.Counters["standby"], DrainRate: drain}
	for i, c := range st.Classes {
		if i < messages.NumClasses {
			l.Queued[i] = c.Queued
		}
	}
	for _, e := range st.Executors {
		if e.State == messages.ExecFailed || e.State == messages.ExecRestarting {
			continue // listed by the supervisor, not attached (docs/supervision.md)
		}
		l.Executors++
		if messages.IsStealExecutor(e.ID) || e.State == messages.ExecDraining {
			continue // another node's capacity (messages.IsStealExecutor), or taking no new work
		}
		l.FreeSlots += max(e.Slots-e.Leases, 0)
	}
	return l
}

// Finished is how many tasks a node has finished (done, dead, cancelled,
// or answered as duplicates), from its status counters.
func Finished(st *messages.Status) int64 {
	c := st.Counters
	return c["done"] + c["dead"] + c["cancelled"] + c["deduplicated"]
}

// Rate turns a growing counter into a smoothed per-second rate (EWMA with
// weight Alpha on the newest interval, default 0.5).
type Rate struct {
	Alpha float64
	last  int64
	at    time.Time
	rate  float64
}

// Observe records the counter's value at now and returns the rate.
func (r *Rate) Observe(now time.Time, count int64) float64 {
	if r.Alpha <= 0 {
		r.Alpha = 0.5
	}
	if !r.at.IsZero() {
		if dt := now.Sub(r.at).Seconds(); dt > 0 {
			inst := float64(count-r.last) / dt
			r.rate = r.Alpha*inst + (1-r.Alpha)*r.rate
		}
	}
	r.last, r.at = count, now
	return r.rate
}
