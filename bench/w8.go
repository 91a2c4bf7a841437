package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// typeHost is W8's host task type: served by the node's bridge, run by
// host agents through the instruction table.
const typeHost = "bench.host"

// w8BridgeSlots is the bridge's slot count in W8: a slot holds a task
// while its instruction goes through the table, so the rate is bounded by
// slots / round trip (Little's law).
const w8BridgeSlots = 2048

// runW8 is the host path (issue 13 item 8): tasks of a host type, granted
// to the node's bridge, written as instructions into the table, taken and
// run by opt.Workers host agents (in this process, each on its own table
// handle, as separate processes would be), their results written back and
// read by the bridge. Two phases on one node:
//
//   - throughput: opt.Tasks no-op tasks submitted in batches of opt.Batch
//     by opt.Producers while the agents run; end-to-end tasks/s.
//   - latency: an open-loop generator submits one task per Submit call at
//     opt.Rate for opt.Duration; submit→start is the agent's handler start
//     minus the Submit call's start (one clock).
//
// The table is a fresh SQLite file in the run's directory, or opt.HostsDB
// (a postgres:// URL: a fresh schema in that database, dropped with the
// database's other data never touched).
func runW8(ctx context.Context, opt Options, res *Result) error {
	dir, err := os.MkdirTemp(opt.Dir, "shoal-bench-w8-table-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn, schema := opt.HostsDB, fmt.Sprintf("shoal_bench_%d", time.Now().UnixNano())
	if dsn == "" {
		dsn = filepath.Join(dir, "hosts.db")
	}
	total := int(float64(opt.Rate) * opt.Duration.Seconds())
	tcfg := table.DefaultConfig(dsn)
	tcfg.Schema = schema
	tcfg.MaxConns = 4
	res.Params = map[string]any{"tasks": opt.Tasks, "batch": opt.Batch, "producers": opt.Producers, "agents": opt.Workers,
		"agent_slots": opt.Slots, "bridge_slots": w8BridgeSlots, "payload_bytes": opt.PayloadBytes, "rate": opt.Rate,
		"duration_s": opt.Duration.Seconds(), "latency_tasks": total, "durable": "fsync (node store); table: SQLite WAL synchronous=NORMAL, PostgreSQL server default"}

	// The bridge's table handle is the node's; each agent opens its own.
	e, err := startEnv(ctx, Options{Dir: opt.Dir, KeepData: opt.KeepData, Logger: opt.Logger, Pebble: opt.Pebble, Tune: func(c *node.Config) {
		c.Hosts = node.HostsConfig{DSN: dsn, Types: []string{typeHost}, Slots: w8BridgeSlots, Table: &tcfg}
		if opt.Tune != nil {
			opt.Tune(c)
		}
	}}, "w8")
	if err != nil {
		return err
	}
	defer e.close()
	backend := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		backend = "postgres"
		res.notef("PostgreSQL: %s, schema %s (created for this run); the server's CPU is not in cpu_us_per_task", opt.hostsWhere(), schema)
	} else {
		res.notef("SQLite file %s (WAL, synchronous=NORMAL), other handles woken by PRAGMA data_version every %v", dsn, tcfg.Watch)
	}
	res.Params["backend"] = backend

	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	nTotal := opt.Tasks + total
	started := make([]atomic.Int64, nTotal) // agent handler start, ns since base
	var execs atomic.Int64
	handler := func(_ context.Context, in table.Instruction) ([]byte, error) {
		now := since()
		execs.Add(1)
		if i := payloadIndex(in.Payload); i < uint64(nTotal) {
			started[i].CompareAndSwap(0, now)
		}
		return nil, nil
	}
	actx, stopAgents := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopAgents(); wg.Wait() }()
	for i := range opt.Workers {
		tbl, err := table.Open(ctx, tcfg)
		if err != nil {
			return fmt.Errorf("open the table for agent %d: %w", i, err)
		}
		acfg := agent.DefaultConfig(fmt.Sprintf("bench-host-%d", i+1))
		acfg.Handlers = map[string]agent.Handler{typeHost: handler}
		acfg.Slots = opt.Slots
		acfg.StatusEvery = 5 * time.Second
		a, err := agent.New(tbl, acfg, opt.Logger)
		if err != nil {
			_ = tbl.Close()
			return err
		}
		wg.Go(func() { defer tbl.Close(); _ = a.Run(actx) })
	}

	// Throughput.
	pl := newPayloads(opt.PayloadBytes)
	build := func(i int) sdk.Task {
		return sdk.Task{Type: typeHost, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
	}
	var acked, overloaded atomic.Int64
	stop := startProgress(opt.Progress, "W8 "+backend+" throughput: run", int64(opt.Tasks), execs.Load)
	cpu0 := processCPU()
	t0 := time.Now()
	if err := submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, &overloaded, nil); err != nil {
		stop()
		return err
	}
	tSubmitted := time.Now()
	if err := e.waitFinished(ctx, int64(opt.Tasks)); err != nil {
		stop()
		return err
	}
	tDone := time.Now()
	stop()
	cpuPerTask(res, cpu0, processCPU(), int64(opt.Tasks))
	res.Metrics["tasks_per_s"] = rate(int64(opt.Tasks), tDone.Sub(t0))
	res.Metrics["submit_tasks_per_s"] = rate(int64(opt.Tasks), tSubmitted.Sub(t0))
	res.Metrics["end_to_end_s"] = secs(tDone.Sub(t0))
	var thr []float64
	for i := range opt.Tasks {
		if s := started[i].Load(); s != 0 {
			thr = append(thr, ms(time.Duration(s)-t0.Sub(base)))
		}
	}
	execsThroughput := execs.Load()

	// Latency: open loop, one task per call.
	submitted := make([]int64, total)
	var lacked, failed atomic.Int64
	var swg sync.WaitGroup
	stop = startProgress(opt.Progress, fmt.Sprintf("W8 %s %d/s: started", backend, opt.Rate), int64(total), func() int64 { return execs.Load() - execsThroughput })
	interval := float64(time.Second) / float64(max(opt.Rate, 1))
	g0 := since()
	for i := 0; i < total && ctx.Err() == nil; {
		due := min(int(float64(since()-g0)/interval)+1, total)
		for ; i < due; i++ {
			swg.Add(1)
			go func(i int) {
				defer swg.Done()
				submitted[i] = since()
				if _, err := e.client.Submit(ctx, build(opt.Tasks+i)); err != nil {
					failed.Add(1)
					return
				}
				lacked.Add(1)
			}(i)
		}
		if i < total {
			time.Sleep(time.Duration(g0 + int64(float64(i)*interval) - since()))
		}
	}
	swg.Wait()
	if err := e.waitFinished(ctx, int64(opt.Tasks)+lacked.Load()); err != nil {
		stop()
		return err
	}
	stop()
	lat := make([]float64, 0, total)
	for i := range total {
		if s := started[opt.Tasks+i].Load(); s != 0 {
			lat = append(lat, ms(time.Duration(s-submitted[i])))
		}
	}
	slices.Sort(lat)
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"max", 1}} {
		res.Metrics["latency_"+q.name+"_ms"] = round(percentile(lat, q.p), 3)
	}
	res.Metrics["latency_samples"] = float64(len(lat))
	if failed.Load() > 0 {
		res.Metrics["latency_submit_errors"] = float64(failed.Load())
	}
	res.Metrics["executions"] = float64(execs.Load())
	res.Metrics["peak_rss_mb"] = round(peakRSSMB(), 1)
	if k := overloaded.Load(); k > 0 {
		res.Metrics["submit_overloaded_retries"] = float64(k)
	}
	e.counters(res)
	slices.Sort(thr)
	if len(thr) > 0 {
		res.notef("throughput phase: first host start %.1f ms after the first submit, last %.1f ms", thr[0], thr[len(thr)-1])
	}
	if want := int64(opt.Tasks) + lacked.Load(); execs.Load() != want {
		return fmt.Errorf("%d host executions for %d acknowledged tasks (a task ran twice or never)", execs.Load(), want)
	}
	if int64(len(lat)) != lacked.Load() {
		return fmt.Errorf("%d acknowledged latency tasks, %d host starts recorded", lacked.Load(), len(lat))
	}
	return nil
}

// hostsWhere names opt.HostsDB's server without its credentials.
func (o Options) hostsWhere() string {
	s := o.HostsDB
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			s = s[:j+3] + "…" + s[i:]
		}
	}
	return s
}
