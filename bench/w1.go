package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// runW1 is throughput: opt.Tasks no-op tasks with unique payloads, batch
// submitted by opt.Producers, run by opt.Workers in-process workers.
//
// drain: submit everything (most of it goes to standby: the dispatch queues
// hold 20,000 per class), then start the executors. concurrent: executors
// first, then the producers. A task counts as done when the node's counters
// show its durable result (fsync'd), which comes after its handler ran.
func runW1(ctx context.Context, opt Options, res *Result) error {
	if opt.Nodes > 1 {
		return runW1Cluster(ctx, opt, res)
	}
	n := int64(opt.Tasks)
	res.Params = map[string]any{"mode": opt.Mode, "tasks": opt.Tasks, "producers": opt.Producers, "batch": opt.Batch,
		"workers": opt.Workers, "slots": opt.Slots, "payload_bytes": opt.PayloadBytes, "durable": "fsync"}
	if opt.StandbyLimit > 0 {
		res.Params["standby_limit"] = opt.StandbyLimit
	}
	po := opt.pebble()
	res.Params["store_memtable_mb"] = po.MemTableSize >> 20
	res.Params["store_l0_compaction_threshold"] = po.L0CompactionThreshold
	res.Params["store_l0_stop_writes"] = po.L0StopWritesThreshold
	if !resetPeakRSS() {
		res.notef("peak RSS could not be reset: it may be an earlier workload's in this process")
	}
	e, err := startEnv(ctx, opt, "w1")
	if err != nil {
		return err
	}
	defer e.close()
	pl := newPayloads(opt.PayloadBytes)
	build := func(i int) sdk.Task {
		return sdk.Task{Type: typeNoop, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
	}
	var execs, acked, overloaded atomic.Int64
	startWorkers := func() error {
		_, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeNoop, false, noopHandler(&execs))
		return err
	}

	var t0, tSubmitted, tWorkers, tDone time.Time
	meter := readCPUMeter()
	cpu0 := processCPU()
	switch opt.Mode {
	case "drain":
		stop := startProgress(opt.Progress, "W1 drain: submitted", n, acked.Load)
		t0 = time.Now()
		err = submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, &overloaded, nil)
		tSubmitted = time.Now()
		stop()
		if err != nil {
			return err
		}
		res.Metrics["standby_after_submit"] = float64(e.counts().Standby)
		stop = startProgress(opt.Progress, "W1 drain: done", n, e.finished)
		defer stop()
		tWorkers = time.Now()
		if err := startWorkers(); err != nil {
			return err
		}
		if err := e.waitFinished(ctx, n); err != nil {
			return err
		}
		tDone = time.Now()
		stop()
		res.Metrics["drain_tasks_per_s"] = rate(n, tDone.Sub(tWorkers))
		res.Metrics["drain_s"] = secs(tDone.Sub(tWorkers))
	case "concurrent":
		if err := startWorkers(); err != nil {
			return err
		}
		stop := startProgress(opt.Progress, "W1 concurrent: done", n, e.finished)
		defer stop()
		t0 = time.Now()
		err = submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, &overloaded, nil)
		tSubmitted = time.Now()
		if err != nil {
			return err
		}
		if err := e.waitFinished(ctx, n); err != nil {
			return err
		}
		tDone = time.Now()
		stop()
	}
	cpuPerTask(res, cpu0, processCPU(), n)
	meter.record(res)
	res.Metrics["submit_tasks_per_s"] = rate(n, tSubmitted.Sub(t0))
	res.Metrics["submit_s"] = secs(tSubmitted.Sub(t0))
	res.Metrics["tasks_per_s"] = rate(n, tDone.Sub(t0))
	res.Metrics["end_to_end_s"] = secs(tDone.Sub(t0))
	res.Metrics["executions"] = float64(execs.Load())
	res.Metrics["peak_rss_mb"] = round(peakRSSMB(), 1)
	e.counters(res)
	if k := overloaded.Load(); k > 0 {
		res.Metrics["submit_overloaded_retries"] = float64(k)
	}
	commits := e.storeStats(res)
	if x := execs.Load(); x != n {
		res.notef("%d handler executions for %d tasks (retries after lease loss count twice)", x, n)
	}
	if d := e.counts().Dead; d > 0 {
		return fmt.Errorf("%d tasks ended dead", d)
	}
	// The storage limit runs after the node has stopped, on its own store.
	if err := e.close(); err != nil {
		return err
	}
	var resultCommits uint64
	if intake := uint64((opt.Tasks + opt.Batch - 1) / opt.Batch); commits > intake {
		resultCommits = commits - intake
	}
	return storageLimit(ctx, opt, res, resultCommits)
}
