package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shoalrt/shoal/cluster"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/actors/supervisor"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// supervisionFlags are `shoal node`'s supervisor flags (docs/supervision.md).
type supervisionFlags struct {
	cfg          supervisor.Config
	executors    int
	executorArgs string
	webhook      string
	execHook     string
}

func (sf *supervisionFlags) add(f *pflag.FlagSet) {
	d := supervisor.DefaultConfig()
	sf.cfg = d
	f.IntVar(&sf.executors, "executors", 0, "start this many \"shoal worker\" processes pointed at this node (with its --token); the supervisor restarts them when they exit or fail health")
	f.StringVar(&sf.executorArgs, "executor-args", "", "extra arguments for the launched workers, space-separated (e.g. \"--types sleep,echo --slots 4\")")
	f.DurationVar(&sf.cfg.Interval, "health-interval", d.Interval, "how often the supervisor checks every executor (heartbeat age, its own health report)")
	f.DurationVar(&sf.cfg.HeartbeatTimeout, "health-timeout", 0, "an awake executor silent this long is evicted (0: four heartbeats, 4 × --lease-ttl / 5)")
	f.DurationVar(&sf.cfg.RestartBase, "restart-base", d.RestartBase, "first restart delay of a launched worker; doubles per failure in the window")
	f.DurationVar(&sf.cfg.RestartMax, "restart-max", d.RestartMax, "longest restart delay")
	f.IntVar(&sf.cfg.MaxRestarts, "max-restarts", d.MaxRestarts, "restarts allowed within --restart-window; the next failure raises an alert and marks the executor failed")
	f.DurationVar(&sf.cfg.RestartWindow, "restart-window", d.RestartWindow, "window in which failures are counted")
	f.StringVar(&sf.cfg.SleepPolicy, "sleep-policy", d.SleepPolicy, "when idle executors sleep: time (no lease for --sleep-after), load (load under --sleep-load for --sleep-after) or off")
	f.DurationVar(&sf.cfg.SleepAfter, "sleep-after", d.SleepAfter, "idle (or low-load) time before an executor is put to sleep")
	f.Float64Var(&sf.cfg.LoadThreshold, "sleep-load", d.LoadThreshold, "load policy: load (max of CPU, memory, IO, leases/slots; 0..1) under which an executor counts as idle")
	f.IntVar(&sf.cfg.MinActive, "sleep-min-active", d.MinActive, "executors kept awake whatever the sleep policy")
	f.StringVar(&sf.webhook, "alert-webhook", "", "URL the supervisor POSTs each alert to as JSON")
	f.StringVar(&sf.execHook, "alert-exec", "", "command (run with /bin/sh -c) that gets each alert as JSON on stdin")
}

// apply sets cfg's supervisor; addr is the node's remote address, which
// launched workers dial with the node's own TLS files and token (the token
// through the environment, SHOAL_TOKEN, so it is not on their command line).
func (sf *supervisionFlags) apply(cfg *node.Config, addr string, sec cluster.Security) error {
	cfg.Supervisor = sf.cfg
	if sf.webhook != "" {
		cfg.AlertSinks = append(cfg.AlertSinks, supervisor.Webhook{URL: sf.webhook})
	}
	if sf.execHook != "" {
		cfg.AlertSinks = append(cfg.AlertSinks, supervisor.Exec{Command: sf.execHook})
	}
	if sf.executors <= 0 {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--executors: cannot find the shoal binary to launch: %w", err)
	}
	extra := strings.Fields(sf.executorArgs)
	cfg.Executors = sf.executors
	var env []string
	if sec.Token != "" {
		env = append(os.Environ(), "SHOAL_TOKEN="+sec.Token)
	}
	cfg.Launcher = supervisor.Command{Path: self, Stderr: os.Stderr, Env: env, Args: func(id string) []string {
		args := []string{"worker", "--node", addr, "--id", id, "--log-level", logLevel}
		if sec.TLS() {
			args = append(args, "--tls-cert", sec.CertFile, "--tls-key", sec.KeyFile, "--tls-ca", sec.CAFile)
		}
		return append(args, extra...)
	}}
	return nil
}

// workerFaults are `shoal worker`'s fault-injection flags, for tests and
// demos of supervision.
type workerFaults struct {
	failOnStart    bool
	unhealthyAfter time.Duration
}

func (wf *workerFaults) add(f *pflag.FlagSet) {
	f.BoolVar(&wf.failOnStart, "fail-on-start", false, "fault injection (tests, demos): exit with status 3 right after starting, before registering")
	f.DurationVar(&wf.unhealthyAfter, "unhealthy-after", 0, "fault injection (tests, demos): report a failing health check on every heartbeat once this long has passed (0: never)")
}

// health returns the worker's health check (nil when no fault is injected).
func (wf *workerFaults) health() func() error {
	if wf.unhealthyAfter <= 0 {
		return nil
	}
	bad := time.Now().Add(wf.unhealthyAfter)
	return func() error {
		if time.Now().After(bad) {
			return fmt.Errorf("injected fault: unhealthy since %v", wf.unhealthyAfter)
		}
		return nil
	}
}

func drainCmd() *cobra.Command {
	var (
		addr string
		undo bool
		sec  cluster.Security
	)
	cmd := &cobra.Command{
		Use:   "drain EXECUTOR",
		Short: "Stop a node granting work to an executor; its running tasks finish (--undo: active again)",
		Long: `Put an executor in the draining state: the node grants it no new work, its
running tasks finish and report as usual, and it prints the state now in
force and how many leases are still running. A draining executor can be
stopped once its leases reach 0 without any task being retried. --undo makes
it active again. Tasks whose requirements only this executor satisfies are
set aside as unplaceable while it drains (shoal status); tasks of its types
without requirements wait for it in the queue.`,
		Example: `  shoal drain worker-3
  shoal drain worker-3 --undo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := dialNode(addr, sec)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			ack, err := sdk.NewClient(conn).Drain(ctx, args[0], undo)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "executor %s: %s, %d leases running\n", args[0], ack.State, ack.Leases)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "node", "127.0.0.1:7070", "address of the node (host:port)")
	cmd.Flags().BoolVar(&undo, "undo", false, "make a draining executor active again")
	addSecurityFlags(cmd.Flags(), &sec, clientTokenHelp)
	return cmd
}

// printAlerts adds the supervisor's alerts to status.
func printAlerts(w io.Writer, alerts []messages.Alert) {
	if len(alerts) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ALERT\tEXECUTOR\tKIND\tFAILURES\tMESSAGE")
	for _, a := range alerts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", time.UnixMilli(a.At).Format(time.RFC3339), a.Executor, a.Kind, a.Failures, a.Message)
	}
}

// executorState is e's state for status ("active" from older nodes).
func executorState(e messages.ExecutorStatus) string {
	s := e.State
	if s == "" {
		s = messages.ExecActive
	}
	if e.Launched {
		s += fmt.Sprintf(" (launched, %d restarts)", e.Restarts)
	}
	if e.Unhealthy != "" {
		s += ": " + e.Unhealthy
	}
	return s
}
