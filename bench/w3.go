package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// runW3 is latency: an open-loop generator submits one task per Submit call
// at opt.Rate for opt.Duration. Submission i is due at t0 + i/rate; the
// generator starts every due submission on its own goroutine, so a slow
// node never slows the offered rate (coordinated omission); how late a
// submission started against its schedule is recorded as lag.
//
// Latency is the handler's start minus the Submit call's start, both read
// from one monotonic clock. The same figure from the scheduled time (lag
// included) is reported as *_sched_ms.
func runW3(ctx context.Context, opt Options, res *Result) error {
	total := int(float64(opt.Rate) * opt.Duration.Seconds())
	if total <= 0 {
		return fmt.Errorf("rate %d/s for %v submits nothing", opt.Rate, opt.Duration)
	}
	res.Params = map[string]any{"rate": opt.Rate, "duration_s": opt.Duration.Seconds(), "tasks": total,
		"workers": opt.Workers, "slots": opt.Slots, "payload_bytes": opt.PayloadBytes, "durable": "fsync", "submit": "one task per call"}
	// One node in this process, or opt.Nodes node processes (cluster.go)
	// recording handler starts in wall-clock time (one machine, one clock).
	var (
		e *env
		c *clusterEnv
	)
	if opt.Nodes > 1 {
		var err error
		if c, err = startCluster(ctx, opt, "w3", true, true); err != nil {
			return err
		}
		defer c.close()
	} else {
		var err error
		if e, err = startEnv(ctx, opt, "w3"); err != nil {
			return err
		}
		defer e.close()
	}

	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	started := make([]atomic.Int64, total) // handler start, ns since base; 0: not started
	submitted := make([]int64, total)      // Submit call start, ns since base
	scheduled := make([]int64, total)      // due time, ns since base
	var execs, acked, failed atomic.Int64
	handler := func(_ context.Context, t messages.Task) ([]byte, error) {
		now := since()
		execs.Add(1)
		if i := payloadIndex(t.Payload); i < uint64(total) {
			started[i].CompareAndSwap(0, now)
		}
		return nil, nil
	}
	if e != nil {
		if _, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeNoop, false, handler); err != nil {
			return err
		}
	}
	pl := newPayloads(opt.PayloadBytes)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	submit := func(i int) {
		defer wg.Done()
		task := sdk.Task{Type: typeNoop, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
		client := (*sdk.Client)(nil)
		if e != nil {
			client = e.client
		} else {
			client = c.clients[i%len(c.clients)]
		}
		submitted[i] = since()
		if _, err := client.Submit(ctx, task); err != nil {
			failed.Add(1)
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
			return
		}
		acked.Add(1)
	}

	stop := startProgress(opt.Progress, fmt.Sprintf("W3 %d/s: started", opt.Rate), int64(total), execs.Load)
	defer stop()
	interval := float64(time.Second) / float64(opt.Rate)
	t0 := since()
	for i := 0; i < total; {
		if ctx.Err() != nil {
			break
		}
		due := min(int(float64(since()-t0)/interval)+1, total)
		for ; i < due; i++ {
			scheduled[i] = t0 + int64(float64(i)*interval)
			wg.Add(1)
			go submit(i)
		}
		if i < total {
			time.Sleep(time.Duration(t0 + int64(float64(i)*interval) - since()))
		}
	}
	genEnd := since()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if e != nil {
		if err := e.waitFinished(waitCtx, acked.Load()); err != nil {
			return err
		}
	} else {
		var seen int64
		if err := c.waitFinished(waitCtx, acked.Load(), &seen); err != nil {
			return err
		}
		starts, err := c.starts(waitCtx)
		if err != nil {
			return err
		}
		for i, ns := range starts {
			if i < uint64(total) {
				started[i].Store(ns - base.UnixNano())
				execs.Add(1)
			}
		}
	}
	stop()

	lat := make([]float64, 0, total)
	latSched := make([]float64, 0, total)
	lag := make([]float64, 0, total)
	perSecond := map[int][]float64{} // by second of the submission's schedule
	var afterWarmup []float64        // submissions scheduled after the first second
	for i := range total {
		lag = append(lag, ms(time.Duration(submitted[i]-scheduled[i])))
		if s := started[i].Load(); s != 0 {
			l := ms(time.Duration(s - submitted[i]))
			lat = append(lat, l)
			latSched = append(latSched, ms(time.Duration(s-scheduled[i])))
			sec := int(time.Duration(scheduled[i] - t0).Seconds())
			perSecond[sec] = append(perSecond[sec], l)
			if sec >= 1 {
				afterWarmup = append(afterWarmup, l)
			}
		}
	}
	var series []string
	for sec := range int(opt.Duration.Seconds()) + 1 {
		if v := perSecond[sec]; len(v) > 0 {
			slices.Sort(v)
			series = append(series, fmt.Sprintf("%d:%.1f/%.1f", sec, percentile(v, 0.99), percentile(v, 1)))
		}
	}
	res.notef("latency p99/max ms per second of the run: %s", strings.Join(series, " "))
	slices.Sort(lat)
	slices.Sort(latSched)
	slices.Sort(lag)
	genDur := time.Duration(genEnd - t0)
	res.Metrics["achieved_rate_per_s"] = rate(acked.Load(), genDur)
	res.Metrics["offered_rate_per_s"] = rate(int64(total), genDur)
	res.Metrics["acknowledged"] = float64(acked.Load())
	res.Metrics["submit_errors"] = float64(failed.Load())
	res.Metrics["latency_samples"] = float64(len(lat))
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1}} {
		res.Metrics[q.name+"_ms"] = round(percentile(lat, q.p), 3)
	}
	slices.Sort(afterWarmup)
	res.Metrics["p99_after_first_second_ms"] = round(percentile(afterWarmup, 0.99), 3)
	res.Metrics["p99_sched_ms"] = round(percentile(latSched, 0.99), 3)
	res.Metrics["max_sched_ms"] = round(percentile(latSched, 1), 3)
	res.Metrics["lag_p99_ms"] = round(percentile(lag, 0.99), 3)
	res.Metrics["lag_max_ms"] = round(percentile(lag, 1), 3)
	if e != nil {
		e.counters(res)
		e.storeStats(res)
	} else {
		c.record(ctx, res)
		res.notef("%d node processes on loopback, each submission to the next node in turn; latency from wall-clock times in this process and the nodes' (one machine)", opt.Nodes)
	}
	if firstErr != nil {
		res.notef("%d submissions failed; first: %v", failed.Load(), firstErr)
	}
	if int64(len(lat)) != acked.Load() {
		return fmt.Errorf("%d acknowledged tasks, %d handler starts recorded", acked.Load(), len(lat))
	}
	return nil
}
