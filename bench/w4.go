package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// spin is the busy loop: n xorshift steps, about a nanosecond each. Its
// result must be used, or the compiler may drop the loop.
func spin(n int, seed uint64) uint64 {
	x := seed | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// calibrateSpin returns the loop count that burns d of CPU. It measures the
// thread's CPU time, not wall time, so a busy machine (preemption) does not
// shorten the loop; without thread CPU time it keeps the fastest wall time
// of several tries.
func calibrateSpin(d time.Duration) (iters int, byCPU bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const probe = 20_000_000
	var sink uint64
	best := time.Duration(1 << 62)
	byCPU = true
	for try := range 5 {
		c0, ok0 := threadCPU()
		w0 := time.Now()
		sink += spin(probe, uint64(try))
		w := time.Since(w0)
		c1, ok1 := threadCPU()
		took := c1 - c0
		if !ok0 || !ok1 || took <= 0 {
			byCPU, took = false, w
		}
		best = min(best, took)
	}
	if sink == 42 {
		fmt.Print("") // keep sink alive
	}
	return max(1, int(float64(probe)*float64(d)/float64(best))), byCPU
}

// calibrationRun is the reference: the same n busy loops on slots
// goroutines fed by a channel. It returns the wall time and the process CPU
// time it took.
func calibrationRun(n, slots, iters int) (time.Duration, time.Duration) {
	cpu0 := processCPU()
	ch := make(chan int, 1024)
	var wg sync.WaitGroup
	var sink atomic.Uint64
	start := time.Now()
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acc uint64
			for i := range ch {
				acc += spin(iters, uint64(i))
			}
			sink.Add(acc)
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return time.Since(start), processCPU() - cpu0
}

// runW4 is CPU efficiency: opt.Tasks tasks each burning opt.Spin of CPU,
// run by opt.Workers workers of opt.Slots slots (1 × 2). The calibration runs
// the same loops on Workers × Slots goroutines fed by a channel, before and
// after the shoal run; efficiency = mean calibration wall / shoal wall.
func runW4(ctx context.Context, opt Options, res *Result) error {
	slots := opt.Workers * opt.Slots
	iters, byCPU := calibrateSpin(opt.Spin)
	res.Params = map[string]any{"tasks": opt.Tasks, "spin_ms": ms(opt.Spin), "workers": opt.Workers, "slots": opt.Slots, "prefetch_per_slot": opt.Prefetch,
		"spin_iters": iters, "producers": opt.Producers, "batch": opt.Batch, "load_sampling": opt.LoadSampling,
		"durable": "fsync", "mode": "concurrent"}
	if !byCPU {
		res.notef("spin calibrated by wall time (thread CPU time unavailable): a busy machine makes tasks shorter than %v", opt.Spin)
	}
	ideal := time.Duration(opt.Tasks) * opt.Spin / time.Duration(slots)

	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "W4: calibration (%d loops on %d goroutines)\n", opt.Tasks, slots)
	}
	cal1, calCPU1 := calibrationRun(opt.Tasks, slots, iters)
	if err := ctx.Err(); err != nil {
		return err
	}

	e, err := startEnv(ctx, opt, "w4")
	if err != nil {
		return err
	}
	defer e.close()
	var execs, acked, busy atomic.Int64
	var sink atomic.Uint64
	handler := func(_ context.Context, t messages.Task) ([]byte, error) {
		start := time.Now()
		execs.Add(1)
		sink.Add(spin(iters, payloadIndex(t.Payload)))
		busy.Add(int64(time.Since(start)))
		return nil, nil
	}
	if _, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeSpin, opt.LoadSampling == "on", handler); err != nil {
		return err
	}
	pl := newPayloads(opt.PayloadBytes)
	build := func(i int) sdk.Task {
		return sdk.Task{Type: typeSpin, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
	}
	n := int64(opt.Tasks)
	stop := startProgress(opt.Progress, "W4: done", n, e.finished)
	cpu0 := processCPU()
	t0 := time.Now()
	err = submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, nil, nil)
	if err == nil {
		err = e.waitFinished(ctx, n)
	}
	wall := time.Since(t0)
	cpu := processCPU() - cpu0
	stop()
	if err != nil {
		return err
	}
	e.counters(res)
	e.storeStats(res)
	if err := e.close(); err != nil { // the calibration gets the machine to itself
		res.notef("closing the node: %v", err)
	}

	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "W4: calibration again\n")
	}
	cal2, calCPU2 := calibrationRun(opt.Tasks, slots, iters)
	cal := (cal1 + cal2) / 2
	res.Metrics["shoal_wall_s"] = secs(wall)
	res.Metrics["calibration_wall_s"] = secs(cal)
	res.Metrics["calibration_before_s"] = secs(cal1)
	res.Metrics["calibration_after_s"] = secs(cal2)
	res.Metrics["ideal_wall_s"] = secs(ideal)
	res.Metrics["efficiency_pct"] = round(100*cal.Seconds()/wall.Seconds(), 1)
	res.Metrics["calibration_vs_ideal_pct"] = round(100*ideal.Seconds()/cal.Seconds(), 1)
	res.Metrics["shoal_vs_ideal_pct"] = round(100*ideal.Seconds()/wall.Seconds(), 1)
	res.Metrics["tasks_per_s"] = rate(n, wall)
	res.Metrics["executions"] = float64(execs.Load())
	// How much of the wall the slots spent inside handlers: the rest is
	// waiting for work (dispatch round trips) or for the CPU.
	res.Metrics["slot_busy_pct"] = round(100*float64(busy.Load())/float64(wall)/float64(slots), 1)
	res.Metrics["handler_ms_mean"] = round(float64(busy.Load())/float64(n)/1e6, 3)
	// CPU the process spent beyond the busy loops, per task: the node, the
	// client and the executor together. The loops' own CPU is the
	// calibration's (on a busy or hyperthreaded host a loop costs more than
	// Spin of CPU).
	calCPU := (calCPU1 + calCPU2) / 2
	res.Metrics["task_cpu_us"] = round(float64(calCPU)/float64(n)/1e3, 1)
	res.Metrics["overhead_cpu_us_per_task"] = round(float64(cpu-calCPU)/float64(n)/1e3, 1)
	return nil
}
