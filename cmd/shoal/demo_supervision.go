package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/shoalrt/shoal/cluster"

	"github.com/shoalrt/shoal/actors/supervisor"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// demoSupervision shows the server supervisor (docs/supervision.md) on a
// second, small node that launches three real `shoal worker` processes:
// one crashes on start (--fail-on-start) and is restarted with backoff
// until it is escalated (an alert, marked failed); the two healthy ones go
// to sleep when idle and wake when a burst of work arrives.
func demoSupervision(ctx context.Context, out io.Writer, log *slog.Logger) error {
	if logLevel != "debug" && logLevel != "info" {
		log = slog.New(slog.DiscardHandler) // its expected exits and alert would clutter the demo
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo supervision: %w", err)
	}
	dir, err := os.MkdirTemp("", "shoal-demo-sup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	system, codec, shutdown, err := listenSystem("127.0.0.1:0", "", cluster.Security{}, log, nil)
	if err != nil {
		return err
	}
	defer shutdown()

	cfg := node.DefaultConfig(dir)
	cfg.Name, cfg.Logger = "sup", log
	cfg.Supervisor.Interval = 50 * time.Millisecond
	cfg.Supervisor.RestartBase, cfg.Supervisor.RestartMax, cfg.Supervisor.MaxRestarts = 50*time.Millisecond, 400*time.Millisecond, 3
	cfg.Supervisor.SleepAfter, cfg.Supervisor.MinActive = 500*time.Millisecond, 0
	faulty := node.LaunchedID(cfg.Name, 1)
	cfg.Executors = 3
	cfg.Launcher = supervisor.Command{Path: self, Args: func(id string) []string {
		args := []string{"worker", "--node", system.Address(), "--id", id, "--types", "noop,echo", "--slots", "4", "--log-level", "error"}
		if id == faulty {
			args = append(args, "--fail-on-start")
		}
		return args
	}}
	n, err := node.Start(ctx, cfg, system, codec)
	if err != nil {
		return err
	}
	defer n.Stop()
	fmt.Fprintf(out, "\nsupervision: node %q launches 3 worker processes; %s crashes on start\n", cfg.Name, faulty)

	wait := func(what string, ok func(*messages.Status) bool) (*messages.Status, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := n.Status(ctx)
			if err == nil && ok(st) {
				return st, nil
			}
			if time.Now().After(deadline) {
				return st, fmt.Errorf("demo supervision: %s did not happen within 30 s", what)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	state := func(st *messages.Status, id string) string {
		for _, e := range st.Executors {
			if e.ID == id {
				return e.State
			}
		}
		return ""
	}
	healthy := []string{node.LaunchedID(cfg.Name, 2), node.LaunchedID(cfg.Name, 3)}
	start := time.Now()
	st, err := wait("escalation and sleep", func(st *messages.Status) bool {
		return state(st, faulty) == messages.ExecFailed && state(st, healthy[0]) == messages.ExecSleeping && state(st, healthy[1]) == messages.ExecSleeping
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  after %v: %s failed after %d restarts (alert: %s); %s and %s asleep\n",
		time.Since(start).Round(time.Millisecond), faulty, st.Counters["restarts"], st.Alerts[0].Message, healthy[0], healthy[1])

	// A burst wakes the sleepers.
	client := sdk.NewClient(sdk.Local(system))
	burst := make([]sdk.Task, 400)
	for i := range burst {
		burst[i] = sdk.Task{Type: "echo", Payload: fmt.Appendf(nil, "burst-%d", i)}
	}
	ids, err := client.SubmitBatch(ctx, burst)
	if err != nil {
		return fmt.Errorf("demo supervision: submit: %w", err)
	}
	outcomes, err := client.Wait(ctx, ids...)
	if err != nil {
		return fmt.Errorf("demo supervision: wait: %w", err)
	}
	done := 0
	for _, o := range outcomes {
		if o.State == messages.StateDone {
			done++
		}
	}
	st, err = n.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", k, v) }
	row("faulty worker restarts (backoff 50 ms doubling)", st.Counters["restarts"])
	row("alerts raised (restart limit)", st.Counters["alerts"])
	row("executors put to sleep", st.Counters["slept"])
	row("woken by the burst", st.Counters["woken"])
	row("burst tasks done", fmt.Sprintf("%d/%d", done, len(burst)))
	tw.Flush()
	if done != len(burst) || st.Counters["alerts"] != 1 || st.Counters["woken"] < 1 {
		return fmt.Errorf("demo supervision: %d/%d burst tasks done, %d alerts, %d woken", done, len(burst), st.Counters["alerts"], st.Counters["woken"])
	}
	return nil
}
