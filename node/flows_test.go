package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// A diamond: split feeds two branches, join merges them.
const diamond = `
name: diamond
input:
  text: {type: string, required: true}
  n: {type: integer, default: 2}
steps:
  - name: split
    type: upper
    args: $input.text
  - name: left
    type: wrap
    args: "L(${steps.split})"
  - name: right
    type: wrap
    args: {v: $steps.split, n: $input.n}
  - name: join
    type: wrap
    args: "${steps.left}+${steps.right.v}x${steps.right.n}"
output:
  result: $steps.join
  text: $input.text
`

// flowWorker handles the step types of the test templates.
func flowWorker(t *testing.T, ctx context.Context, conn *sdk.Conn, runs *sync.Map) context.CancelFunc {
	count := func(k string) {
		v, _ := runs.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "flow-worker", Slots: 8, NoLoad: true})
	w.Handle("upper", func(_ context.Context, tk messages.Task) ([]byte, error) {
		count("upper:" + string(tk.Payload))
		return []byte(strings.ToUpper(string(tk.Payload))), nil
	})
	w.Handle("wrap", func(_ context.Context, tk messages.Task) ([]byte, error) {
		count("wrap:" + string(tk.Payload))
		var obj map[string]any
		if json.Unmarshal(tk.Payload, &obj) == nil {
			return tk.Payload, nil // objects pass through
		}
		return []byte("[" + string(tk.Payload) + "]"), nil
	})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	return func() { cancel(); <-done }
}

func runs(m *sync.Map, k string) int64 {
	v, ok := m.Load(k)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func TestFlowRunsAndAssembles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	var ran sync.Map
	defer flowWorker(t, ctx, conn, &ran)()
	c := sdk.NewClient(conn)

	info, err := c.RegisterTemplate(ctx, []byte(diamond))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 1 || len(info.Steps) != 4 {
		t.Fatalf("registered %+v", info)
	}
	if again, err := c.RegisterTemplate(ctx, []byte(diamond)); err != nil || again.Version != 1 {
		t.Fatalf("same text again: version %d, %v; want 1", again.Version, err)
	}
	id, err := c.RunFlow(ctx, sdk.Flow{Template: "diamond", Input: []byte(`{"text": "ab", "n": "3"}`)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.WaitFlow(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].State != messages.StateDone {
		t.Fatalf("flow %v: %s", out[0].State, out[0].Error)
	}
	var got map[string]any
	if err := json.Unmarshal(out[0].Output, &got); err != nil {
		t.Fatalf("flow output %q: %v", out[0].Output, err)
	}
	if got["result"] != `[[L(AB)]+ABx3]` || got["text"] != "ab" {
		t.Fatalf("flow output %v", got)
	}
	st, err := c.GetFlow(ctx, id)
	if err != nil || st.Template != "diamond" || st.TemplateVersion != 1 || st.Outcome.State != messages.StateDone {
		t.Fatalf("get flow: %+v, %v", st, err)
	}

	// Bad templates and inputs are refused with errors naming what is wrong.
	for _, tc := range []struct{ spec, want string }{
		{"name: c\nsteps:\n - {name: a, type: wrap, args: $steps.b}\n - {name: b, type: wrap, args: $steps.a}\n", "cycle"},
		{"name: u\nsteps:\n - {name: a, type: wrap, args: $steps.zz}\n", `step a: args: $steps.zz refers to step "zz"`},
		{"name: m\ninput: {x: string}\nsteps:\n - {name: a, type: wrap, args: $input.y}\n", `step a: uses input field "y"`},
		{"name: r\nsteps:\n - {name: a, type: shoal.flow}\n", `step a: type "shoal.flow" is reserved`},
	} {
		_, err := c.RegisterTemplate(ctx, []byte(tc.spec))
		if !errors.Is(err, messages.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("template %q: err %v, want %q", tc.spec, err, tc.want)
		}
	}
	_, err = c.RunFlow(ctx, sdk.Flow{Template: "diamond", Input: []byte(`{"n": 1}`)})
	if !errors.Is(err, messages.ErrInvalid) || !strings.Contains(err.Error(), `input field "text" is required`) {
		t.Errorf("missing input: %v", err)
	}
	_, err = c.RunFlow(ctx, sdk.Flow{Template: "nope"})
	if !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("unknown template: %v", err)
	}
	list, err := c.Templates(ctx, false)
	if err != nil || len(list) != 1 || list[0].Name != "diamond" {
		t.Fatalf("templates: %+v %v", list, err)
	}
}

// Two flows wait for the same step: it runs once and both receive its
// result. The shared step blocks until both flows have submitted it.
func TestFlowSharedStepRunsOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	c := sdk.NewClient(conn)
	tpl := "name: share\ninput: {key: string, own: string}\nsteps:\n" +
		" - {name: common, type: slow, args: $input.key}\n" +
		" - {name: mine, type: fast, args: \"${steps.common}/${input.own}\"}\n"
	if _, err := c.RegisterTemplate(ctx, []byte(tpl)); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var slowRuns, fastRuns atomic.Int64
	fail := atomic.Bool{}
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "w", Slots: 4, NoLoad: true})
	w.Handle("slow", func(ctx context.Context, tk messages.Task) ([]byte, error) {
		slowRuns.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if fail.Load() {
			return nil, sdk.Permanent(errors.New("source unavailable"))
		}
		return append([]byte("C:"), tk.Payload...), nil
	})
	w.Handle("fast", func(_ context.Context, tk messages.Task) ([]byte, error) {
		fastRuns.Add(1)
		return tk.Payload, nil
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)

	run := func(key string, owners ...string) []uint64 {
		var fs []sdk.Flow
		for _, o := range owners {
			fs = append(fs, sdk.Flow{Template: "share", Input: fmt.Appendf(nil, `{"key": %q, "own": %q}`, key, o)})
		}
		ids, err := c.RunFlows(ctx, fs)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// waitShared waits until every flow has submitted its common step.
	waitSubmitted := func(ids []uint64) {
		for _, id := range ids {
			for {
				st, err := c.GetFlow(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Steps) > 0 && st.Steps[0].TaskID != 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}

	ids := run("k1", "a", "b", "c")
	waitSubmitted(ids)
	release <- struct{}{}
	out, err := c.WaitFlow(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		want := fmt.Sprintf(`{"common":"C:k1","mine":"C:k1/%c"}`, 'a'+i)
		if o.State != messages.StateDone || string(o.Output) != `{"mine":"C:k1/`+string(rune('a'+i))+`"}` {
			t.Fatalf("flow %d: %v %q %s (want the sink step's result, not %s)", i, o.State, o.Output, o.Error, want)
		}
	}
	if slowRuns.Load() != 1 || fastRuns.Load() != 3 {
		t.Fatalf("shared step ran %d times, own steps %d; want 1 and 3", slowRuns.Load(), fastRuns.Load())
	}
	if s, err := n.FlowStats(ctx); err != nil || s.StepsShared != 2 || s.StepsRun != 4 {
		t.Fatalf("steps shared %d run %d (%v); want 2 and 4", s.StepsShared, s.StepsRun, err)
	}

	// The shared step fails: every flow attached to it fails with its error
	// (they asked for the same work); none of their own steps runs.
	fail.Store(true)
	ids = run("k2", "a", "b")
	waitSubmitted(ids)
	release <- struct{}{}
	out, err = c.WaitFlow(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.State != messages.StateDead || !strings.Contains(o.Error, "step common") || !strings.Contains(o.Error, "source unavailable") {
			t.Fatalf("flow %d after the shared step failed: %v %q", i, o.State, o.Error)
		}
	}
	if slowRuns.Load() != 2 || fastRuns.Load() != 3 {
		t.Fatalf("after the failure: shared step ran %d times (want 2), own steps %d (want 3)", slowRuns.Load(), fastRuns.Load())
	}
	// A flow started after the failure runs the step anew.
	fail.Store(false)
	ids = run("k2", "z")
	release <- struct{}{}
	out, err = c.WaitFlow(ctx, ids...)
	if err != nil || out[0].State != messages.StateDone || string(out[0].Output) != `{"mine":"C:k2/z"}` {
		t.Fatalf("flow after the failure: %+v %v", out, err)
	}
	if slowRuns.Load() != 3 {
		t.Fatalf("shared step ran %d times, want 3", slowRuns.Load())
	}
}

// Cancelling a flow cancels its running step (the handler's context ends)
// and the flow ends cancelled.
func TestFlowCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	c := sdk.NewClient(conn)
	if _, err := c.RegisterTemplate(ctx, []byte("name: hang\nsteps:\n - {name: wait, type: hang, args: $input}\n - {name: after, type: hang, args: $steps.wait}\n")); err != nil {
		t.Fatal(err)
	}
	started, stopped := make(chan struct{}, 1), make(chan struct{}, 1)
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "w", Slots: 2, NoLoad: true})
	w.Handle("hang", func(ctx context.Context, tk messages.Task) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- struct{}{}
		return nil, ctx.Err()
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	id, err := c.RunFlow(ctx, sdk.Flow{Template: "hang", Input: []byte(`"x"`)})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := c.CancelFlow(ctx, id); err != nil {
		t.Fatal(err)
	}
	out, err := c.WaitFlow(ctx, id)
	if err != nil || out[0].State != messages.StateCancelled {
		t.Fatalf("cancelled flow: %+v %v", out, err)
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the running step's handler was not cancelled")
	}
	if s, err := n.FlowStats(ctx); err != nil || s.Cancelled != 1 {
		t.Fatalf("flows cancelled %d (%v), want 1", s.Cancelled, err)
	}
}

// A high-priority flow's steps go before the waiting steps of low-priority
// flows: one slot, no prefetch, so the run order is the dispatch order.
func TestFlowPriorityOvertakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(cfg *node.Config) {
		cfg.Dispatch.Prefetch, cfg.Dispatch.MinPrefetch, cfg.Dispatch.BufferTime = 0, 0, 0
		cfg.Dispatch.AgingAfter = time.Hour // a slow machine must not promote the low class by age
	})
	defer n.Stop()
	c := sdk.NewClient(conn)
	if _, err := c.RegisterTemplate(ctx, []byte("name: two\nsteps:\n - {name: a, type: rec, args: \"a-${input}\"}\n - {name: b, type: rec, args: \"b-${input}\", after: [a]}\n")); err != nil {
		t.Fatal(err)
	}
	var lows []sdk.Flow
	for i := range 30 {
		lows = append(lows, sdk.Flow{Template: "two", Input: fmt.Appendf(nil, `"low%d"`, i), Priority: 10, HasPriority: true})
	}
	if _, err := c.RunFlows(ctx, lows); err != nil {
		t.Fatal(err)
	}
	hi, err := c.RunFlow(ctx, sdk.Flow{Template: "two", Input: []byte(`"high"`), Priority: 90, HasPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every flow's first step is queued, then start one slot.
	for {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Classes[messages.ClassLow].Queued == 30 && st.Classes[messages.ClassHigh].Queued == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first low step to run holds the slot until the high flow's second
	// step is queued: from then on it competes with 29 waiting low steps.
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []string
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "one", Slots: 1, NoLoad: true})
	w.Handle("rec", func(ctx context.Context, tk messages.Task) ([]byte, error) {
		mu.Lock()
		order = append(order, string(tk.Payload))
		mu.Unlock()
		if strings.HasPrefix(string(tk.Payload), "a-low") {
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return nil, nil
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	for {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Classes[messages.ClassHigh].Queued == 1 && st.Counters["flow_steps_run"] >= 1 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(gate)
	if out, err := c.WaitFlow(ctx, hi); err != nil || out[0].State != messages.StateDone {
		t.Fatalf("high flow: %+v %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	pos := map[string]int{}
	for i, p := range order {
		pos[p] = i
	}
	// The dispatcher's 6:3:1 schedule gives low one pick in ten, so one more
	// low step may run first; without priority the high flow's second step
	// would wait behind the 29 low first steps queued before it.
	if pos["a-high"] != 0 || pos["b-high"] > 3 {
		t.Fatalf("high flow's steps ran at %d and %d of %v", pos["a-high"], pos["b-high"], order)
	}
}

// A node restarted mid-flow (same Pebble directory) resumes the flow: the
// step that finished before the restart does not run again, the one that
// was running runs again, and the flow completes with the right result.
func TestFlowResumesAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, conn := startNode(t, dir, nil)
	c := sdk.NewClient(conn)
	tpl := []byte("name: chain\nsteps:\n - {name: one, type: first, args: $input}\n - {name: two, type: second, args: \"${steps.one}!\"}\n")
	if _, err := c.RegisterTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	var firstRuns, secondRuns atomic.Int64
	secondStarted := make(chan struct{}, 4)
	handlers := func(w *sdk.Worker, block bool) {
		w.Handle("first", func(_ context.Context, tk messages.Task) ([]byte, error) {
			firstRuns.Add(1)
			return append([]byte("1:"), tk.Payload...), nil
		})
		w.Handle("second", func(ctx context.Context, tk messages.Task) ([]byte, error) {
			secondRuns.Add(1)
			secondStarted <- struct{}{}
			if block {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return append([]byte("2:"), tk.Payload...), nil
		})
	}
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "before", Slots: 2, NoLoad: true})
	handlers(w, true)
	wctx, wstop := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(wctx) }()
	id, err := c.RunFlow(ctx, sdk.Flow{Template: "chain", Input: []byte(`"go"`)})
	if err != nil {
		t.Fatal(err)
	}
	<-secondStarted // step one is done (durable), step two runs
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	wstop()
	<-wdone

	// The template is not registered again: the flow task carries it.
	n, conn = startNode(t, dir, nil)
	defer n.Stop()
	c = sdk.NewClient(conn)
	w = sdk.NewWorker(conn, sdk.WorkerConfig{ID: "after", Slots: 2, NoLoad: true})
	handlers(w, false)
	wctx, wstop = context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	wctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	out, err := c.WaitFlow(wctx2, id)
	if err != nil {
		st, gerr := c.GetFlow(ctx, id)
		stat, _ := n.Status(ctx)
		t.Fatalf("%v; flow %+v %v; status %+v", err, st, gerr, stat)
	}
	if out[0].State != messages.StateDone || string(out[0].Output) != `{"two":"2:1:go!"}` {
		t.Fatalf("resumed flow: %v %q %s", out[0].State, out[0].Output, out[0].Error)
	}
	if firstRuns.Load() != 1 || secondRuns.Load() != 2 {
		t.Fatalf("step one ran %d times (want 1), step two %d (want 2: once before the restart, once after)", firstRuns.Load(), secondRuns.Load())
	}
}

// A failing step is retried per its retry policy; a step that then
// succeeds lets its flow finish, one that keeps failing fails its flow with
// its error after its attempts.
func TestFlowStepRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(cfg *node.Config) { cfg.Dispatch.RetryBase = 5 * time.Millisecond })
	defer n.Stop()
	c := sdk.NewClient(conn)
	tpl := "name: retry\nsteps:\n - {name: s, type: unsteady, args: $input, retry: {max_attempts: 2}}\n - {name: t, type: unsteady, args: \"ok-${steps.s}\"}\n"
	if _, err := c.RegisterTemplate(ctx, []byte(tpl)); err != nil {
		t.Fatal(err)
	}
	var calls sync.Map
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "w", Slots: 4, NoLoad: true})
	w.Handle("unsteady", func(_ context.Context, tk messages.Task) ([]byte, error) {
		v, _ := calls.LoadOrStore(string(tk.Payload), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		switch {
		case string(tk.Payload) == "never":
			return nil, errors.New("disk on fire")
		case string(tk.Payload) == "once" && tk.Attempt == 1:
			return nil, errors.New("transient")
		}
		return tk.Payload, nil
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	ids, err := c.RunFlows(ctx, []sdk.Flow{{Template: "retry", Input: []byte(`"once"`)}, {Template: "retry", Input: []byte(`"never"`)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.WaitFlow(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].State != messages.StateDone || string(out[0].Output) != `{"t":"ok-once"}` {
		t.Fatalf("flow with a step that succeeds on retry: %v %q %s", out[0].State, out[0].Output, out[0].Error)
	}
	if out[1].State != messages.StateDead || !strings.Contains(out[1].Error, "step s") || !strings.Contains(out[1].Error, "failed after 2 attempt(s): disk on fire") {
		t.Fatalf("flow with a step that keeps failing: %v %q", out[1].State, out[1].Error)
	}
	if v, _ := calls.Load("never"); v.(*atomic.Int64).Load() != 2 {
		t.Fatalf("failing step ran %d times, want 2 (its max_attempts)", v.(*atomic.Int64).Load())
	}
	if _, ran := calls.Load("ok-never"); ran {
		t.Fatal("the step after the failed one ran")
	}
}

// The node's in-process flow API (what an HTTP front end calls).
func TestNodeFlowAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	api := n.Flows()
	if _, err := api.RegisterTemplate(ctx, []byte("name: x\nsteps: [{name: a, type: b, args: $steps.zz}]")); !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("bad template: %v", err)
	}
	info, err := api.RegisterTemplate(ctx, []byte("name: api\nsteps:\n - {name: one, type: gate, args: $input}\n - {name: two, type: gate, args: \"${steps.one}+\"}\n"))
	if err != nil || info.Version != 1 {
		t.Fatalf("register: %+v %v", info, err)
	}
	if l := api.Templates(false); len(l) != 1 || l[0].Name != "api" {
		t.Fatalf("templates: %+v", l)
	}
	if _, err := api.Run(ctx, messages.FlowSpec{Template: "missing"}); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("unknown template: %v", err)
	}
	gate := make(chan struct{})
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "w", Slots: 4, NoLoad: true})
	w.Handle("gate", func(ctx context.Context, tk messages.Task) ([]byte, error) {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return tk.Payload, nil
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	ids, err := api.Run(ctx, messages.FlowSpec{Template: "api", Input: []byte(`"go"`)}, messages.FlowSpec{Template: "api", Input: []byte(`"stop"`)})
	if err != nil || len(ids) != 2 {
		t.Fatalf("run: %v %v", ids, err)
	}
	for {
		st, err := api.Get(ctx, ids[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Steps) == 2 && st.Steps[0].TaskID != 0 {
			if st.Template != "api" || st.Outcome.State != messages.StateLeased || st.Steps[1].State != messages.StateUnknown {
				t.Fatalf("running flow: %+v", st)
			}
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if o, err := api.Cancel(ctx, ids[1]); err != nil || o.State != messages.StateCancelled {
		t.Fatalf("cancel: %+v %v", o, err)
	}
	close(gate)
	o, err := api.Wait(ctx, ids[0])
	if err != nil || o.State != messages.StateDone || string(o.Output) != `{"two":"go+"}` {
		t.Fatalf("wait: %+v %v", o, err)
	}
	if o, err := api.Wait(ctx, ids[1]); err != nil || o.State != messages.StateCancelled {
		t.Fatalf("cancelled flow: %+v %v", o, err)
	}
	if _, err := api.Get(ctx, 999_999); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}
