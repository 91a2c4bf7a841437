package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/actors/flow"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// w5Template is W5's flow: five no-op steps in a diamond (a → b, {b, c} →
// d → e). a and b depend only on the flow's group, c on the group for even
// flows and on the flow for odd ones, d and e on the flow: with groups of
// ten concurrent flows, half of all step submissions carry a digest that
// other flows submit too.
const w5Template = `
name: bench.w5
input: {g: string, k3: string, id: string}
steps:
  - {name: a, type: bench.noop, args: "a/${input.g}"}
  - {name: b, type: bench.noop, args: "b/${input.g}", after: [a]}
  - {name: c, type: bench.noop, args: "c/${input.k3}"}
  - {name: d, type: bench.noop, args: "d/${input.id}", after: [b, c]}
  - {name: e, type: bench.noop, args: "e/${input.id}", after: [d]}
output: {d: $steps.d, e: $steps.e}
`

// w5Group is how many flows share a group's steps.
const w5Group = 10

// w5Expected is the number of distinct step payloads of n flows: the step
// executions when every shared step runs once.
func w5Expected(n int) int {
	groups := (n + w5Group - 1) / w5Group // every group has an even flow
	return 3*groups + n/2 + 2*n
}

// runW5 is flows: opt.Tasks flows of 5 steps, half the step submissions
// shared between concurrent flows, submitted in batches while the executors
// run.
func runW5(ctx context.Context, opt Options, res *Result) error {
	n := opt.Tasks
	expected := w5Expected(n)
	res.Params = map[string]any{"flows": n, "steps_per_flow": 5, "group": w5Group, "shared_submissions": 0.5,
		"producers": opt.Producers, "batch": opt.Batch, "workers": opt.Workers, "slots": opt.Slots, "durable": "fsync"}
	e, err := startEnv(ctx, opt, "w5")
	if err != nil {
		return err
	}
	defer e.close()
	var execs atomic.Int64
	if _, err := e.startWorkers(ctx, opt.Workers, opt.Slots, typeNoop, false, noopHandler(&execs)); err != nil {
		return err
	}
	if _, err := e.client.RegisterTemplate(ctx, []byte(w5Template)); err != nil {
		return fmt.Errorf("register the W5 template: %w", err)
	}
	lone, err := w5Lone(ctx, e, 20)
	if err != nil {
		return err
	}
	nonce := time.Now().UnixNano()
	build := func(i int) sdk.Flow {
		g := fmt.Sprintf("%d-g%d", nonce, i/w5Group)
		id := fmt.Sprintf("%d-f%d", nonce, i)
		k3 := g
		if i%2 == 1 {
			k3 = id
		}
		return sdk.Flow{Template: "bench.w5", Input: fmt.Appendf(nil, `{"g":%q,"k3":%q,"id":%q}`, g, k3, id)}
	}
	ids := make([]uint64, n)
	submitted := make([]int64, n) // unix ns of each flow's RunFlows call
	stats := func() flow.Stats {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, _ := e.node.FlowStats(sctx)
		return st
	}
	// The burst's own figures: the lone flows ran before it.
	s0 := stats()
	execs0, submitted0, shared0, done0 := execs.Load(), s0.StepsSubmitted, s0.StepsShared, s0.Done
	finished := func() int64 { st := stats(); return st.Done - done0 + st.Failed }
	stop := startProgress(opt.Progress, "W5: flows finished", int64(n), finished)
	defer stop()

	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, opt.Producers)
	nb := (n + opt.Batch - 1) / opt.Batch
	for range opt.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := int(next.Add(1)) - 1
				if b >= nb {
					return
				}
				first, last := b*opt.Batch, min((b+1)*opt.Batch, n)
				fs := make([]sdk.Flow, 0, last-first)
				for i := first; i < last; i++ {
					fs = append(fs, build(i))
				}
				at := time.Now().UnixNano()
				got, err := e.client.RunFlows(ctx, fs)
				if err != nil {
					errs <- fmt.Errorf("run flows %d..%d: %w", first, last-1, err)
					return
				}
				copy(ids[first:], got)
				for i := first; i < last; i++ {
					submitted[i] = at
				}
			}
		}()
	}
	wg.Wait()
	tSubmitted := time.Now()
	select {
	case err := <-errs:
		return err
	default:
	}
	// Every flow's result is durable when Wait answers.
	if _, err := e.client.Wait(ctx, ids...); err != nil {
		return fmt.Errorf("waiting for %d flows (%d finished): %w", n, finished(), err)
	}
	tDone := time.Now()
	stop()

	// Flow latency: from the RunFlows call to the flow task's durable result.
	lat := make([]float64, 0, n)
	var failed int
	var firstErr string
	for i, id := range ids {
		r, ok, err := e.node.Store().Result(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("flow %d (task %d) has no durable result", i, id)
		}
		if r.State != messages.StateDone {
			failed++
			if firstErr == "" {
				firstErr = r.Error
			}
			continue
		}
		lat = append(lat, ms(time.Duration(r.FinishedAt-submitted[i])))
	}
	slices.Sort(lat)
	x := execs.Load() - execs0
	res.Metrics["flows_per_s"] = rate(int64(n), tDone.Sub(t0))
	res.Metrics["submit_flows_per_s"] = rate(int64(n), tSubmitted.Sub(t0))
	res.Metrics["end_to_end_s"] = secs(tDone.Sub(t0))
	s1 := stats()
	res.Metrics["step_submissions"] = float64(s1.StepsSubmitted - submitted0)
	res.Metrics["step_executions"] = float64(x)
	res.Metrics["step_executions_expected"] = float64(expected)
	res.Metrics["steps_shared"] = float64(s1.StepsShared - shared0)
	res.Metrics["flows_failed"] = float64(failed)
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.50}, {"p99", 0.99}, {"max", 1}} {
		res.Metrics["flow_latency_"+q.name+"_ms"] = round(percentile(lat, q.p), 1)
	}
	res.Metrics["lone_flow_p50_ms"] = round(percentile(lone, 0.5), 1)
	res.Metrics["lone_flow_max_ms"] = round(percentile(lone, 1), 1)
	res.Metrics["peak_rss_mb"] = round(peakRSSMB(), 1)
	e.counters(res)
	e.storeStats(res)
	res.notef("lone_flow: %d flows of the same shape run one at a time before the burst (RunFlow to WaitFlow), the latency of a flow that waits for nobody", len(lone))
	res.notef("latency: from the RunFlows call (batches of %d) to the flow task's durable result; every flow is durable before it is acknowledged", opt.Batch)
	switch {
	case failed > 0:
		return fmt.Errorf("%d flows failed; first: %s", failed, firstErr)
	case x != int64(expected):
		return fmt.Errorf("%d step executions, want %d (every distinct step once)", x, expected)
	}
	return nil
}

// w5Lone runs n flows one after another (unique inputs) and returns each
// one's latency in ms: RunFlow to the end of WaitFlow.
func w5Lone(ctx context.Context, e *env, n int) ([]float64, error) {
	var out []float64
	for i := range n {
		in := fmt.Appendf(nil, `{"g":"lone-g%[1]d","k3":"lone-k%[1]d","id":"lone-%[1]d-%[2]d"}`, i, time.Now().UnixNano())
		t := time.Now()
		id, err := e.client.RunFlow(ctx, sdk.Flow{Template: "bench.w5", Input: in})
		if err != nil {
			return nil, fmt.Errorf("lone flow: %w", err)
		}
		o, err := e.client.WaitFlow(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("lone flow: %w", err)
		}
		if o[0].State != messages.StateDone {
			return nil, fmt.Errorf("lone flow %d: %s %s", id, o[0].State, o[0].Error)
		}
		out = append(out, ms(time.Since(t)))
	}
	slices.Sort(out)
	return out, nil
}
