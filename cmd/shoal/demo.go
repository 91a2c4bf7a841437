package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/spf13/cobra"
	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

type demoOptions struct {
	tasks, workers, slots int
	dupPct                int
	dir                   string
	keep                  bool
	store                 storeFlags
}

func demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a node with workers on a temporary store, push a realistic mix through it, print a summary",
		Long: `Start a node on a fresh Pebble store with in-process workers, submit a mix of
tasks (all priority classes, 20% duplicates, tasks that fail once and are
retried, tasks that always fail and end dead), show progress, and print what
happened: executions, duplicates absorbed, retries, dead tasks, per-class
latency and throughput. Every submitted task is checked at the end.`,
		Example: `  shoal demo
  shoal demo --tasks 100000 --workers 8 --duplicates 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.tasks, "tasks", 20_000, "tasks to submit")
	f.IntVar(&o.workers, "workers", 4, "in-process workers")
	f.IntVar(&o.slots, "slots", 8, "slots per worker")
	f.IntVar(&o.dupPct, "duplicates", 20, "percent of submissions that repeat an earlier payload")
	f.StringVar(&o.dir, "data", "", "store directory (default: a temporary directory, removed afterwards)")
	f.BoolVar(&o.keep, "keep", false, "keep the store directory")
	o.store.add(f)
	return cmd
}

// demo task kinds and their share of the unique tasks.
var demoKinds = []struct {
	typ   string
	share int // per 1000
}{{"thumbnail", 690}, {"report", 200}, {"flaky", 90}, {"broken", 20}}

type demoStats struct {
	runs, retries atomic.Int64
	mu            sync.Mutex
	started       map[uint64]time.Time // first start per task id
}

func runDemo(ctx context.Context, out, progress io.Writer, o demoOptions) error {
	if o.tasks <= 0 || o.workers <= 0 || o.slots <= 0 || o.dupPct < 0 || o.dupPct > 90 {
		return errors.New("demo: --tasks, --workers and --slots must be > 0 and --duplicates in [0, 90]")
	}
	pebbleOpts, err := o.store.options()
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "shoal-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	if !o.keep && o.dir == "" {
		defer os.RemoveAll(dir)
	}
	log := logger()
	alog := actorLogger(log)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return alog }))
	cfg := node.DefaultConfig(dir)
	cfg.Name, cfg.Logger = "demo", log
	cfg.Pebble = pebbleOpts
	cfg.Dispatch.RetryBase = 20 * time.Millisecond
	n, err := node.Start(ctx, cfg, system, nil)
	if err != nil {
		return err
	}
	defer n.Stop()
	fmt.Fprintf(out, "shoal demo: node on %s, %d workers × %d slots, %d tasks (%d%% duplicates)\n\n", dir, o.workers, o.slots, o.tasks, o.dupPct)

	conn := sdk.Local(system)
	st := &demoStats{started: map[uint64]time.Time{}}
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range o.workers {
		w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: fmt.Sprintf("demo-worker-%d", i+1), Slots: o.slots, Logger: log})
		for _, k := range demoKinds {
			w.Handle(k.typ, st.handler(k.typ))
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	defer func() { stopWorkers(); wg.Wait() }()

	tasks := demoMix(o.tasks, o.dupPct)
	client := sdk.NewClient(conn)
	start := time.Now()
	ids := make([]uint64, len(tasks))
	submitted := make([]time.Time, len(tasks))
	done := make(chan struct{})
	go demoProgress(progress, n, len(tasks), start, done)
	const batch = 500
	for i := 0; i < len(tasks); i += batch {
		j := min(i+batch, len(tasks))
		now := time.Now()
		got, err := client.SubmitBatch(ctx, tasks[i:j])
		if err != nil {
			close(done)
			return fmt.Errorf("demo: submit: %w", err)
		}
		copy(ids[i:j], got)
		for k := i; k < j; k++ {
			submitted[k] = now
		}
	}
	outcomes, err := client.Wait(ctx, ids...)
	elapsed := time.Since(start)
	close(done)
	if err != nil {
		return fmt.Errorf("demo: wait: %w", err)
	}
	status, err := n.Status(ctx)
	if err != nil {
		return err
	}
	return errors.Join(demoSummary(out, tasks, ids, submitted, outcomes, st, status, elapsed), demoFlows(ctx, out, n, conn), demoHosts(ctx, out), demoSupervision(ctx, out, log), demoCloud(ctx, out))
}

func (st *demoStats) handler(typ string) sdk.Handler {
	return func(ctx context.Context, t messages.Task) ([]byte, error) {
		st.mu.Lock()
		if _, ok := st.started[t.ID]; !ok {
			st.started[t.ID] = time.Now()
		}
		st.mu.Unlock()
		st.runs.Add(1)
		if t.Attempt > 1 {
			st.retries.Add(1)
		}
		switch typ {
		case "thumbnail": // CPU work: about 0.2 ms of hashing
			sum := blake3.Sum256(t.Payload)
			for range 400 {
				sum = blake3.Sum256(sum[:])
			}
			return fmt.Appendf(nil, "thumb-%x", sum[:6]), nil
		case "report": // I/O-like wait
			select {
			case <-time.After(time.Duration(2+t.ID%4) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return []byte("report ready"), nil
		case "flaky":
			if t.Attempt == 1 {
				return nil, errors.New("upstream timeout (first attempt fails on purpose)")
			}
			return []byte("ok after retry"), nil
		default:
			return nil, errors.New("corrupt input (always fails)")
		}
	}
}

// demoMix builds the submissions: unique tasks of each kind with random
// priorities, and dupPct percent repeats of earlier ones.
func demoMix(total, dupPct int) []sdk.Task {
	rng := rand.New(rand.NewPCG(1, 2))
	var tasks []sdk.Task
	for i := range total {
		if i > 10 && rng.IntN(100) < dupPct {
			tasks = append(tasks, tasks[rng.IntN(len(tasks))])
			continue
		}
		r, typ := rng.IntN(1000), demoKinds[len(demoKinds)-1].typ
		for _, k := range demoKinds {
			if r < k.share {
				typ = k.typ
				break
			}
			r -= k.share
		}
		tasks = append(tasks, sdk.Task{Type: typ, Payload: fmt.Appendf(nil, "%s-%d", typ, i), Priority: int32(rng.IntN(101))})
	}
	return tasks
}

func demoProgress(w io.Writer, n *node.Node, total int, start time.Time, done <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	draw := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, _ := n.Counters(ctx)
		cancel()
		fin := int(c.Finished())
		const width = 40
		filled := min(width, fin*width/max(total, 1))
		rate := float64(fin) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\r[%s%s] %6d/%d finished  %7.0f tasks/s  standby %d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), fin, total, rate, c.Standby)
	}
	for {
		select {
		case <-done:
			draw()
			fmt.Fprintln(w)
			return
		case <-t.C:
			draw()
		}
	}
}

func demoSummary(out io.Writer, tasks []sdk.Task, ids []uint64, submitted []time.Time, outcomes []messages.Outcome, st *demoStats, status *messages.Status, elapsed time.Duration) error {
	cfg := node.DefaultConfig("").Intake
	type classAgg struct {
		n       int
		latency []time.Duration
	}
	var classes [messages.NumClasses]classAgg
	var all []time.Duration
	states := map[messages.TaskState]int{}
	var problems []string
	for i, o := range outcomes {
		states[o.State]++
		want := messages.StateDone
		if tasks[i].Type == "broken" {
			want = messages.StateDead
		}
		if o.State != want && len(problems) < 5 {
			problems = append(problems, fmt.Sprintf("task %d (%s): %s, want %s", ids[i], tasks[i].Type, o.State, want))
		}
		c := cfg.ClassOf(tasks[i].Priority)
		classes[c].n++
		st.mu.Lock()
		s, ok := st.started[ids[i]]
		st.mu.Unlock()
		if ok {
			d := s.Sub(submitted[i])
			classes[c].latency = append(classes[c].latency, d)
			all = append(all, d)
		}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	fmt.Fprintln(out, "\nsummary")
	row("submitted", len(tasks))
	row("handler executions (incl. retries)", st.runs.Load())
	row("finished done", status.Counters["done"])
	row("duplicates absorbed (did not run)", status.Counters["deduplicated"])
	row("retried attempts", status.Counters["retried"])
	row("dead (attempts exhausted)", status.Counters["dead"])
	row("wall time", elapsed.Round(time.Millisecond))
	row("throughput (tasks/s)", fmt.Sprintf("%.0f", float64(len(tasks))/elapsed.Seconds()))
	row("submit→start p50", pct(all, 50))
	row("submit→start p99", pct(all, 99))
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\ttasks\tstarted\tp50 start\tp99 start\t")
	for c := range classes {
		a := classes[c]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%v\t%v\t\n", messages.Class(c), a.n, len(a.latency), pct(a.latency, 50), pct(a.latency, 99))
	}
	tw.Flush()
	if len(problems) > 0 {
		return fmt.Errorf("demo: %d tasks ended in the wrong state, e.g. %s", len(problems), strings.Join(problems, "; "))
	}
	fmt.Fprintf(out, "\ncheck: all %d submissions accounted for (%d done, %d dead)\n", len(tasks), states[messages.StateDone], states[messages.StateDead])
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
