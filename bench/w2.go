package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// dupPlan is W2's submission order: seq[i] is the unique payload that
// submission i carries. A duplicate repeats an earlier unique payload, chosen
// in three equal shares so that duplicates meet their original in every
// state: near (within half a batch: same or adjacent batch, original still
// queued or in standby), recent (within the last 5,000 uniques: queued or
// running) and anywhere earlier (mostly finished, inside the dedupe window).
type dupPlan struct {
	seq    []uint32
	unique int
	near   int
	recent int
	far    int
}

func planDuplicates(n int, frac float64, batch int, seed uint64) dupPlan {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	d := int(float64(n)*frac + 0.5)
	dup := make([]bool, n)
	// Choose d of the positions 1..n-1 (position 0 must be an original).
	pos := make([]int, n-1)
	for i := range pos {
		pos[i] = i + 1
	}
	for i := 0; i < d && i < len(pos); i++ {
		j := i + r.IntN(len(pos)-i)
		pos[i], pos[j] = pos[j], pos[i]
		dup[pos[i]] = true
	}
	p := dupPlan{seq: make([]uint32, n)}
	k := 0 // uniques so far
	for i := range n {
		if !dup[i] {
			p.seq[i] = uint32(k)
			k++
			continue
		}
		var back int
		switch i % 3 {
		case 0:
			back = 1 + r.IntN(min(k, max(batch/2, 1)))
			p.near++
		case 1:
			back = 1 + r.IntN(min(k, 5000))
			p.recent++
		default:
			back = 1 + r.IntN(k)
			p.far++
		}
		p.seq[i] = uint32(k - back)
	}
	p.unique = k
	return p
}

// runW2 is dedupe: opt.Tasks submissions of which DupFraction repeat an
// earlier payload exactly, submitted while the executors run.
func runW2(ctx context.Context, opt Options, res *Result) error {
	plan := planDuplicates(opt.Tasks, opt.DupFraction, opt.Batch, 42)
	n := int64(opt.Tasks)
	res.Params = map[string]any{"tasks": opt.Tasks, "dup_fraction": opt.DupFraction, "unique": plan.unique,
		"dups_near": plan.near, "dups_recent": plan.recent, "dups_far": plan.far,
		"producers": opt.Producers, "batch": opt.Batch, "workers": opt.Workers, "slots": opt.Slots,
		"payload_bytes": opt.PayloadBytes, "durable": "fsync", "mode": "concurrent"}
	if !resetPeakRSS() {
		res.notef("peak RSS could not be reset: it may be an earlier workload's in this process")
	}
	e, err := startEnv(ctx, opt, "w2")
	if err != nil {
		return err
	}
	defer e.close()
	pl := newPayloads(opt.PayloadBytes)
	runs := make([]atomic.Int32, plan.unique)
	var execs, acked, bad atomic.Int64
	handler := func(_ context.Context, t messages.Task) ([]byte, error) {
		execs.Add(1)
		if u := payloadIndex(t.Payload); u < uint64(len(runs)) {
			runs[u].Add(1)
		} else {
			bad.Add(1)
		}
		return nil, nil
	}
	if _, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeNoop, false, handler); err != nil {
		return err
	}
	build := func(i int) sdk.Task {
		return sdk.Task{Type: typeNoop, Payload: pl.make(uint64(plan.seq[i])), Priority: messages.DefaultPriority}
	}
	stop := startProgress(opt.Progress, "W2: done", n, e.finished)
	defer stop()
	t0 := time.Now()
	err = submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, nil, nil)
	tSubmitted := time.Now()
	if err != nil {
		return err
	}
	if err := e.waitFinished(ctx, n); err != nil {
		return err
	}
	tDone := time.Now()
	stop()

	var dupRan, neverRan int64
	for i := range runs {
		switch c := runs[i].Load(); {
		case c == 0:
			neverRan++
		case c > 1:
			dupRan += int64(c - 1)
		}
	}
	x := execs.Load()
	res.Metrics["submissions"] = float64(n)
	res.Metrics["unique"] = float64(plan.unique)
	res.Metrics["executions"] = float64(x)
	res.Metrics["duplicates_ran"] = float64(x - int64(plan.unique))
	res.Metrics["payloads_run_twice_or_more"] = float64(dupRan)
	res.Metrics["tasks_per_s"] = rate(n, tDone.Sub(t0))
	res.Metrics["submit_tasks_per_s"] = rate(n, tSubmitted.Sub(t0))
	res.Metrics["end_to_end_s"] = secs(tDone.Sub(t0))
	res.Metrics["peak_rss_mb"] = round(peakRSSMB(), 1)
	e.counters(res)
	e.storeStats(res)
	switch {
	case bad.Load() > 0:
		return fmt.Errorf("%d executions carried a payload the benchmark did not submit", bad.Load())
	case neverRan > 0:
		return fmt.Errorf("%d unique payloads finished without any execution", neverRan)
	case x != int64(plan.unique):
		return fmt.Errorf("%d executions for %d unique payloads: %d duplicate executions", x, plan.unique, x-int64(plan.unique))
	}
	return nil
}
