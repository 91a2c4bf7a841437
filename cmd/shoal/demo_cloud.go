package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/shoalrt/shoal/actors/cloud"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// demoCloud shows cloud spill: a node with one small local worker gets a
// burst it cannot absorb, plus tasks needing a GPU it does not have. The
// cloud actor (process provider) starts `shoal worker --cloud` processes
// for both, and releases them once they idle. It runs its own node with a
// loopback listener, since cloud workers are real processes.
func demoCloud(ctx context.Context, out io.Writer) error {
	bin, err := os.Executable()
	if err != nil || strings.HasSuffix(bin, ".test") {
		fmt.Fprintln(out, "\ncloud spill: not shown (the demo is not running from the shoal binary, which cloud workers need)")
		return nil
	}
	dir, err := os.MkdirTemp("", "shoal-demo-cloud-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := logger()
	system, codec, shutdown, err := listenSystem("127.0.0.1:0", "", cluster.Security{}, log, nil)
	if err != nil {
		return err
	}
	defer shutdown()
	cfg := node.DefaultConfig(dir)
	cfg.Name, cfg.Logger = "demo-cloud", log
	cfg.Cloud.Provider = "process"
	cfg.Cloud.Grace, cfg.Cloud.Idle, cfg.Cloud.Every = 300*time.Millisecond, time.Second, 100*time.Millisecond
	cfg.Cloud.Saturation, cfg.Cloud.MaxExecutors, cfg.Cloud.Slots = 4, 3, 4
	cfg.Cloud.Capabilities = map[string]string{"gpu": "a100"}
	cfg.CloudProvider = &cloud.Process{Binary: bin, Target: cloud.Target{Node: system.Address()}}
	n, err := node.Start(ctx, cfg, system, codec)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = n.Stop()
		}
	}()

	conn := sdk.Local(system)
	var localRuns atomic.Int64
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: "demo-local", Slots: 2, Logger: log, Capabilities: map[string]string{"os": "linux"}})
	w.Handle("hash", func(ctx context.Context, t messages.Task) ([]byte, error) {
		localRuns.Add(1)
		return hashTask(ctx, t)
	})
	wctx, stopWorker := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(wctx) }()
	defer func() { stopWorker(); wg.Wait() }()

	const burst, gpu, rounds = 400, 12, 30_000
	var tasks []sdk.Task
	for i := range burst {
		tasks = append(tasks, sdk.Task{Type: "hash", Payload: fmt.Appendf(nil, "%d:burst-%d", rounds, i), Priority: messages.DefaultPriority})
	}
	for i := range gpu {
		tasks = append(tasks, sdk.Task{Type: "hash", Payload: fmt.Appendf(nil, "%d:gpu-%d", rounds, i), Priority: messages.DefaultPriority,
			Requirements: map[string]string{"gpu": "=a100"}})
	}
	fmt.Fprintf(out, "\ncloud spill: a burst of %d tasks on one local worker (2 slots) and %d tasks needing gpu=a100, which no local executor has\n", burst, gpu)
	start := time.Now()
	client := sdk.NewClient(conn)
	ids, err := client.SubmitBatch(ctx, tasks)
	if err != nil {
		return fmt.Errorf("demo cloud: submit: %w", err)
	}
	// What a client sees meanwhile: the GPU tasks are unplaceable until a
	// cloud executor offering a GPU registers.
	var unplaceable string
	for range 20 {
		if st, err := n.Status(ctx); err == nil && len(st.Unplaceable) > 0 {
			unplaceable = fmt.Sprintf("%d tasks (%s)", st.Unplaceable[0].Tasks, st.Unplaceable[0].Requirements)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wctxWait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	outcomes, err := client.Wait(wctxWait, ids...)
	if err != nil {
		return fmt.Errorf("demo cloud: wait: %w", err)
	}
	elapsed := time.Since(start)
	done := 0
	for _, o := range outcomes {
		if o.State == messages.StateDone {
			done++
		}
	}
	var cs cloud.Status
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if cs, ok = n.CloudStatus(ctx); ok {
			if cs.Active == 0 && cs.Counters.Released == cs.Counters.Provisioned {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	idled := time.Since(start) - elapsed
	stopped = true
	if err := n.Stop(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("tasks done", fmt.Sprintf("%d of %d in %v", done, len(tasks), elapsed.Round(time.Millisecond)))
	if unplaceable != "" {
		row("reported unplaceable", unplaceable)
	}
	row("cloud executors provisioned", fmt.Sprintf("%d (%d for the unplaceable tasks, %d for saturation)", cs.Counters.Provisioned, cs.Counters.ForUnplaceable, cs.Counters.ForSaturation))
	row("ran on the local worker", localRuns.Load())
	row("ran on cloud executors", int64(done)-localRuns.Load())
	row("released after idling", fmt.Sprintf("%d (all gone %v after the last task)", cs.Counters.Released, idled.Round(100*time.Millisecond)))
	row("failed provisions", cs.Counters.Failed)
	row("refused (--cloud-max 3 reached)", cs.Counters.Refused)
	tw.Flush()
	if done != len(tasks) || cs.Counters.Provisioned == 0 || cs.Active != 0 {
		return fmt.Errorf("demo cloud: %d of %d done, %d provisioned, %d still active", done, len(tasks), cs.Counters.Provisioned, cs.Active)
	}
	return nil
}
