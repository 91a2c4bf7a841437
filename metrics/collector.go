// Package metrics exposes a node's state to Prometheus (docs/metrics.md).
//
// A Collector asks the node once per scrape (node.Status, which gathers the
// actors' counters, queues, executors, flows, cloud and members; the
// routers' forwarding counts; the host table; the store's histograms and
// totals) and turns the answers into const metrics. Nothing is counted on
// the tasks' path, so a node that is not scraped pays nothing, and actors
// share no state with the collector: it only asks, as `shoal status` does.
package metrics

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/store"
)

// Config configures a Collector.
type Config struct {
	// Timeout bounds one scrape's questions to the node. Default 5 s.
	Timeout time.Duration
	// Logger receives failed questions (debug level). Default: discard.
	Logger *slog.Logger
}

// Collector is a prometheus.Collector over one node.
type Collector struct {
	n   *node.Node
	cfg Config
	d   descs
}

// NewCollector returns the collector of n.
func NewCollector(n *node.Node, cfg Config) *Collector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{n: n, cfg: cfg, d: newDescs()}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one round of questions to the
// node per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	o := out{ch}
	d := &c.d
	failed := func(part string, err error) {
		c.cfg.Logger.Debug("metrics: question failed", "part", part, "err", err)
		o.gauge(d.scrapeErrors, 1, part)
	}
	o.gauge(d.nodeInfo, 1, c.n.Name())
	ready := 1.0
	if c.n.Ready(ctx) != nil {
		ready = 0
	}
	o.gauge(d.nodeReady, ready)

	st, err := c.n.Status(ctx)
	if err != nil {
		failed("status", err)
	} else {
		c.collectStatus(o, st)
	}
	c.collectStore(o, st)
	if rs, err := c.n.RouterStats(ctx); err != nil {
		failed("routers", err)
	} else {
		for name, s := range rs {
			o.counter(d.forwarded, float64(s.Forwarded), name)
			o.counter(d.forwardFailed, float64(s.Failed), name)
			o.gauge(d.forwardWaiting, float64(s.Waiting), name)
		}
	}
	if hs, err := c.n.HostStatuses(ctx); err != nil {
		failed("hosts", err)
	} else if hs != nil {
		o.gauge(d.hostsReporting, float64(len(hs)))
		now := time.Now()
		for _, h := range hs {
			o.gauge(d.hostRunning, float64(h.Running), h.Host)
			o.gauge(d.hostCPU, h.CPU, h.Host)
			o.gauge(d.hostMem, h.Mem, h.Host)
			o.gauge(d.hostReportAge, now.Sub(h.Reported).Seconds(), h.Host)
		}
	}
}

type out struct{ ch chan<- prometheus.Metric }

func (o out) gauge(d *prometheus.Desc, v float64, labels ...string) {
	o.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (o out) counter(d *prometheus.Desc, v float64, labels ...string) {
	o.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func (o out) histogram(d *prometheus.Desc, s store.HistogramSnapshot) {
	buckets := make(map[float64]uint64, len(s.Bounds))
	for i, b := range s.Bounds {
		buckets[b.Seconds()] = s.Cumulative[i]
	}
	o.ch <- prometheus.MustNewConstHistogram(d, s.Count, s.Sum.Seconds(), buckets)
}

// collectStore reads the store's own counters (no actor is asked) and the
// durable task totals; st (nil if status failed) supplies the since-start
// totals of a store that keeps none durably.
func (c *Collector) collectStore(o out, st *messages.Status) {
	d := &c.d
	s := c.n.Store()
	switch s := s.(type) {
	case *store.Pebble:
		x := s.Stats()
		o.counter(d.storeCommits, float64(x.Commits), "pebble")
		o.counter(d.storeSyncs, float64(x.Syncs), "pebble")
		o.counter(d.storeBytes, float64(x.Bytes), "pebble")
	case *store.Postgres:
		x := s.Stats()
		o.counter(d.storeCommits, float64(x.Commits), "postgres")
		o.counter(d.storeSyncs, float64(x.Syncs), "postgres")
	}
	m, ok := s.(store.Metered)
	if !ok {
		return
	}
	o.histogram(d.commitLatency, m.CommitLatency())
	o.histogram(d.syncLatency, m.SyncLatency())
	if t, durable := m.Totals(); durable {
		o.counter(d.tasksDone, float64(t.Done))
		o.counter(d.tasksDead, float64(t.Dead))
		o.counter(d.tasksCancelled, float64(t.Cancelled))
		o.counter(d.tasksDeduplicated, float64(t.Deduplicated))
	} else if st != nil {
		o.counter(d.tasksDone, float64(st.Counters["done"]))
		o.counter(d.tasksDead, float64(st.Counters["dead"]))
		o.counter(d.tasksCancelled, float64(st.Counters["cancelled"]))
		o.counter(d.tasksDeduplicated, float64(st.Counters["deduplicated"]))
	}
}

// collectStatus turns node.Status into metrics.
func (c *Collector) collectStatus(o out, st *messages.Status) {
	d := &c.d
	k := st.Counters
	for _, m := range d.fromCounters {
		if v, ok := k[m.key]; ok {
			o.ch <- prometheus.MustNewConstMetric(m.desc, m.typ, float64(v))
		}
	}
	for _, cl := range st.Classes {
		o.gauge(d.queueDepth, float64(cl.Queued), cl.Class)
		o.gauge(d.classStandby, float64(cl.Standby), cl.Class)
		o.gauge(d.classPaused, b2f(cl.Paused), cl.Class)
	}
	states := map[string]int{messages.ExecActive: 0, messages.ExecSleeping: 0, messages.ExecDraining: 0, messages.ExecFailed: 0}
	for _, e := range st.Executors {
		state := e.State
		if state == "" {
			state = messages.ExecActive
		}
		states[state]++
		o.gauge(d.execSlots, float64(e.Slots), e.ID)
		o.gauge(d.execLeases, float64(e.Leases), e.ID)
		if e.Launched {
			o.counter(d.execRestarts, float64(e.Restarts), e.ID)
		}
		if e.ID == node.BridgeID(st.Node) {
			o.gauge(d.hostInflight, float64(e.Leases))
		}
	}
	names := make([]string, 0, len(states))
	for s := range states {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		o.gauge(d.executors, float64(states[s]), s)
	}
	if len(st.Members) > 0 {
		o.gauge(d.members, float64(len(st.Members)))
		for _, m := range st.Members {
			o.gauge(d.partitions, float64(m.Partitions), m.Name)
		}
	}
	o.gauge(d.alerts, float64(len(st.Alerts)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
