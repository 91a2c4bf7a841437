package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/actors/results"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// memSample is one RSS sample of W6.
type memSample struct {
	at     time.Duration
	rssMB  float64
	heapMB float64
	phase  string
}

// memSampler samples RSS and the Go heap every interval until stopped.
type memSampler struct {
	mu      sync.Mutex
	samples []memSample
	phase   string
	stop    chan struct{}
	done    chan struct{}
}

func startMemSampler(every time.Duration, phase string) *memSampler {
	s := &memSampler{phase: phase, stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	take := func() {
		metrics.Read(heap)
		h := 0.0
		if heap[0].Value.Kind() == metrics.KindUint64 {
			h = float64(heap[0].Value.Uint64()) / (1 << 20)
		}
		s.mu.Lock()
		s.samples = append(s.samples, memSample{at: time.Since(start), rssMB: rssMB(), heapMB: h, phase: s.phase})
		s.mu.Unlock()
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		take()
		for {
			select {
			case <-s.stop:
				take()
				return
			case <-t.C:
				take()
			}
		}
	}()
	return s
}

func (s *memSampler) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *memSampler) finish() []memSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// runW6 is overload. It measures the drain rate first (opt.Tasks tasks
// submitted while the executors run), unless opt.Rate gives the offered
// rate, then submits batches at Overload × that rate for opt.Duration,
// open loop, against a node with a small StandbyLimit. Every submission is
// acknowledged or refused; refusals must be ErrOverloaded, anything else is
// reported. RSS is sampled every second. At the end every acknowledged task
// must reach a done outcome (client.Wait).
func runW6(ctx context.Context, opt Options, res *Result) error {
	res.Params = map[string]any{"duration_s": opt.Duration.Seconds(), "overload": opt.Overload, "standby_limit": opt.StandbyLimit,
		"batch": opt.Batch, "workers": opt.Workers, "slots": opt.Slots, "payload_bytes": opt.PayloadBytes, "durable": "fsync"}
	e, err := startEnv(ctx, opt, "w6")
	if err != nil {
		return err
	}
	defer e.close()
	var execs atomic.Int64
	if _, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeNoop, opt.LoadSampling == "on", noopHandler(&execs)); err != nil {
		return err
	}
	pl := newPayloads(opt.PayloadBytes)
	mem := startMemSampler(time.Second, "probe")
	samples := []memSample(nil)
	defer func() {
		if samples == nil {
			mem.finish()
		}
	}()

	// Drain probe.
	offered := float64(opt.Rate)
	if opt.Rate == 0 {
		var acked atomic.Int64
		n := int64(opt.Tasks)
		build := func(i int) sdk.Task {
			return sdk.Task{Type: typeNoop, Payload: pl.make(uint64(i)), Priority: messages.DefaultPriority}
		}
		stop := startProgress(opt.Progress, "W6 drain probe: done", n, e.finished)
		t0 := time.Now()
		err := submitBatches(ctx, []*sdk.Client{e.client}, opt.Tasks, opt.Batch, opt.Producers, build, &acked, nil, nil)
		if err == nil {
			err = e.waitFinished(ctx, n)
		}
		stop()
		if err != nil {
			return fmt.Errorf("drain probe: %w", err)
		}
		drain := rate(n, time.Since(t0))
		res.Metrics["drain_tasks_per_s"] = drain
		offered = opt.Overload * drain
	}
	res.Params["offered_rate"] = round(offered, 0)
	base := e.finished()

	// Overload.
	mem.setPhase("overload")
	type slab struct {
		tasks []sdk.Task
		buf   []byte
	}
	pool := sync.Pool{New: func() any {
		return &slab{tasks: make([]sdk.Task, opt.Batch), buf: make([]byte, opt.Batch*opt.PayloadBytes)}
	}}
	const maxInflight = 1024
	var (
		sem                         = make(chan struct{}, maxInflight)
		wg                          sync.WaitGroup
		mu                          sync.Mutex
		ackedIDs                    []uint64
		offeredN, ackedN, rejectedN atomic.Int64
		otherN, skippedN            atomic.Int64
		otherErrs                   = map[string]int{}
		nextIndex                   = uint64(opt.Tasks)
		ackLat, rejLat              []float64 // SubmitBatch call durations, ms
	)
	submit := func(s *slab) {
		defer wg.Done()
		defer func() { <-sem }()
		t := time.Now()
		ids, err := e.client.SubmitBatch(ctx, s.tasks)
		took := ms(time.Since(t))
		mu.Lock()
		if err == nil {
			ackLat = append(ackLat, took)
		} else {
			rejLat = append(rejLat, took)
		}
		mu.Unlock()
		switch {
		case err == nil:
			ackedN.Add(int64(len(ids)))
			mu.Lock()
			ackedIDs = append(ackedIDs, ids...)
			mu.Unlock()
			// The node holds the payloads now: the slab is not reused.
		case errors.Is(err, messages.ErrOverloaded):
			rejectedN.Add(int64(len(s.tasks)))
			pool.Put(s)
		default:
			otherN.Add(int64(len(s.tasks)))
			mu.Lock()
			otherErrs[err.Error()]++
			mu.Unlock()
		}
	}
	stop := startProgress(opt.Progress, "W6 overload: acknowledged", 0, ackedN.Load)
	interval := float64(time.Second) * float64(opt.Batch) / offered
	batches := int(opt.Duration.Seconds() * offered / float64(opt.Batch))
	t0 := time.Now()
	for b := 0; b < batches && ctx.Err() == nil; {
		due := min(int(float64(time.Since(t0))/interval)+1, batches)
		for ; b < due; b++ {
			offeredN.Add(int64(opt.Batch))
			select {
			case sem <- struct{}{}:
			default:
				skippedN.Add(int64(opt.Batch)) // the generator's own in-flight bound
				continue
			}
			s := pool.Get().(*slab)
			for j := range s.tasks {
				p := s.buf[j*opt.PayloadBytes : (j+1)*opt.PayloadBytes : (j+1)*opt.PayloadBytes]
				pl.fill(p, nextIndex)
				nextIndex++
				s.tasks[j] = sdk.Task{Type: typeNoop, Payload: p, Priority: messages.DefaultPriority}
			}
			wg.Add(1)
			go submit(s)
		}
		if b < batches {
			time.Sleep(time.Until(t0.Add(time.Duration(float64(b) * interval))))
		}
	}
	genWall := time.Since(t0)
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return err
	}

	// Every acknowledged task must finish done: first wait for the node's
	// counters to show every accepted task finished (cheap), then ask for
	// each acknowledged id's outcome (client.Wait) to prove none was lost.
	mem.setPhase("completion")
	tc := time.Now()
	stop = startProgress(opt.Progress, "W6 completion: done", ackedN.Load(), func() int64 { return e.finished() - base })
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	werr := e.waitFinished(wctx, e.counts().Accepted)
	cancel()
	stop()
	complete := time.Since(tc)
	samples = mem.finish()
	tv := time.Now()
	outcomes, verr := waitAll(ctx, e.client, ackedIDs)
	werr = errors.Join(werr, verr)
	res.Metrics["verify_wait_s"] = secs(time.Since(tv))

	states := map[messages.TaskState]int{}
	for _, o := range outcomes {
		states[o.State]++
	}
	lost := len(ackedIDs) - states[messages.StateDone]
	res.Metrics["offered_tasks_per_s"] = rate(offeredN.Load(), genWall)
	res.Metrics["offered"] = float64(offeredN.Load())
	res.Metrics["acknowledged"] = float64(ackedN.Load())
	res.Metrics["acknowledged_tasks_per_s"] = rate(ackedN.Load(), genWall)
	res.Metrics["rejected_overloaded"] = float64(rejectedN.Load())
	res.Metrics["rejected_other"] = float64(otherN.Load())
	res.Metrics["generator_skipped"] = float64(skippedN.Load())
	res.Metrics["submitted_tasks_per_s"] = rate(offeredN.Load()-skippedN.Load(), genWall)
	slices.Sort(ackLat)
	slices.Sort(rejLat)
	res.Metrics["ack_call_p50_ms"] = round(percentile(ackLat, 0.5), 2)
	res.Metrics["ack_call_p99_ms"] = round(percentile(ackLat, 0.99), 2)
	res.Metrics["reject_call_p50_ms"] = round(percentile(rejLat, 0.5), 2)
	res.Metrics["reject_call_p99_ms"] = round(percentile(rejLat, 0.99), 2)
	res.Metrics["unaccounted"] = float64(offeredN.Load() - ackedN.Load() - rejectedN.Load() - otherN.Load() - skippedN.Load())
	res.Metrics["lost"] = float64(lost)
	res.Metrics["completion_after_s"] = secs(complete)
	res.Metrics["executions"] = float64(execs.Load())
	memMetrics(res, samples)
	e.counters(res)
	e.storeStats(res)
	if skippedN.Load() > 0 {
		res.notef("the generator skipped %d tasks: %d batches were in flight (its own bound, not shoal's refusal)", skippedN.Load(), maxInflight)
	}
	for msg, k := range otherErrs {
		res.notef("%d batches failed with a non-overload error: %s", k, msg)
	}
	switch {
	case werr != nil:
		return fmt.Errorf("waiting for the acknowledged tasks: %w", werr)
	case lost > 0:
		return fmt.Errorf("%d of %d acknowledged tasks did not finish done (states %v)", lost, len(ackedIDs), states)
	case otherN.Load() > 0:
		return fmt.Errorf("%d tasks refused with an error other than ErrOverloaded", otherN.Load())
	}
	return nil
}

// waitAll waits for ids in chunks the result hub accepts.
func waitAll(ctx context.Context, c *sdk.Client, ids []uint64) ([]sdk.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	out := make([]sdk.Outcome, 0, len(ids))
	for chunk := range slices.Chunk(ids, results.MaxWaitIDs) {
		o, err := c.Wait(ctx, chunk...)
		if err != nil {
			return out, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// memMetrics summarises the RSS samples: the maximum of each phase, the
// growth over the second half of the overload (a plateau shows ~0), and the
// series in a note.
func memMetrics(res *Result, samples []memSample) {
	var over []memSample
	var series []string
	maxRSS, maxHeap := 0.0, 0.0
	for _, s := range samples {
		maxRSS, maxHeap = max(maxRSS, s.rssMB), max(maxHeap, s.heapMB)
		if s.phase == "overload" {
			over = append(over, s)
		}
		series = append(series, fmt.Sprintf("%.0fs:%s:%.0f/%.0f", s.at.Seconds(), s.phase[:1], s.rssMB, s.heapMB))
	}
	res.Metrics["rss_max_mb"] = round(maxRSS, 1)
	res.Metrics["heap_max_mb"] = round(maxHeap, 1)
	if len(over) >= 4 {
		half := len(over) / 2
		first, second := 0.0, 0.0
		for _, s := range over[:half] {
			first = max(first, s.rssMB)
		}
		for _, s := range over[half:] {
			second = max(second, s.rssMB)
		}
		res.Metrics["rss_overload_first_half_max_mb"] = round(first, 1)
		res.Metrics["rss_overload_second_half_max_mb"] = round(second, 1)
		res.Metrics["rss_overload_growth_second_half_mb"] = round(second-first, 1)
	}
	res.notef("RSS/heap MB per second (p=probe, o=overload, c=completion): %s", strings.Join(series, " "))
}
