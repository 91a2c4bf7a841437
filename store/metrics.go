package store

import (
	"sync/atomic"
	"time"
)

// What the stores expose for metrics (see docs/metrics.md). Both stores
// observe one latency per group commit (never per task) into histograms they
// own, and the Pebble store keeps its totals of results durably.

// Metered is implemented by stores that expose write latencies and result
// totals (Pebble and PostgreSQL).
type Metered interface {
	// CommitLatency is the time from the committer taking a group to the
	// group being durable, one observation per group.
	CommitLatency() HistogramSnapshot
	// SyncLatency is the time of the write that makes a group durable: the
	// synced WAL write with its fsync (Pebble), the round trip ending in
	// the server's commit and WAL flush (PostgreSQL).
	SyncLatency() HistogramSnapshot
	// Totals are the results the store has written, by kind; durable
	// reports whether they survive a restart (false: since open only).
	Totals() (t Totals, durable bool)
}

// Totals count terminal results written, by kind, as task.Counters.Count
// classifies them.
type Totals struct {
	Done, Dead, Cancelled, Deduplicated uint64
}

// latencyBounds are the histograms' bucket upper bounds: 50 µs doubling to
// about 3.3 s (17 buckets), wide enough for an NVMe fsync and a remote
// PostgreSQL commit alike.
var latencyBounds = func() []time.Duration {
	b := make([]time.Duration, 17)
	for i := range b {
		b[i] = 50 * time.Microsecond << i
	}
	return b
}()

// LatencyHistogram is a fixed-bucket histogram of durations, safe for one
// writer and any readers. The store keeps it free of any metrics library;
// the metrics package turns a snapshot into a Prometheus histogram.
type LatencyHistogram struct {
	buckets [17 + 1]atomic.Uint64 // per bucket, not cumulative; last: +Inf
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

// Observe records one duration.
func (h *LatencyHistogram) Observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
	h.count.Add(1)
}

// HistogramSnapshot is a histogram read at one moment: Cumulative[i] counts
// observations <= Bounds[i]; Count and Sum cover all of them.
type HistogramSnapshot struct {
	Bounds     []time.Duration
	Cumulative []uint64
	Count      uint64
	Sum        time.Duration
}

// Snapshot reads h. Readers racing a writer may see a count one ahead of
// the buckets; Prometheus tolerates it.
func (h *LatencyHistogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: latencyBounds, Cumulative: make([]uint64, len(latencyBounds))}
	var c uint64
	for i := range latencyBounds {
		c += h.buckets[i].Load()
		s.Cumulative[i] = c
	}
	s.Count = c + h.buckets[len(latencyBounds)].Load()
	s.Sum = time.Duration(h.sumNs.Load())
	return s
}

// countTotals adds the results of committed requests to the totals.
func (p *Postgres) countTotals(reqs []*pgReq) {
	for _, r := range reqs {
		t := r.w.totals
		p.totals[0].Add(t.Done)
		p.totals[1].Add(t.Dead)
		p.totals[2].Add(t.Cancelled)
		p.totals[3].Add(t.Deduplicated)
	}
}

// CommitLatency implements Metered.
func (p *Postgres) CommitLatency() HistogramSnapshot { return p.commitLatency.Snapshot() }

// SyncLatency implements Metered.
func (p *Postgres) SyncLatency() HistogramSnapshot { return p.syncLatency.Snapshot() }

// Totals implements Metered: results this store wrote since it was opened.
// Not durable: on a shared store the nodes' results are in one table, and
// a count at open would count every node's; see docs/metrics.md.
func (p *Postgres) Totals() (Totals, bool) {
	return Totals{Done: p.totals[0].Load(), Dead: p.totals[1].Load(), Cancelled: p.totals[2].Load(), Deduplicated: p.totals[3].Load()}, false
}

var (
	_ Metered = (*Pebble)(nil)
	_ Metered = (*Postgres)(nil)
)
