package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/store/pgtest"
)

func startHostNode(t *testing.T, dsn string, types ...string) (*node.Node, *sdk.Client) {
	t.Helper()
	return startHostNodeIn(t, t.TempDir(), dsn, types...)
}

func startHostNodeIn(t *testing.T, dir, dsn string, types ...string) (*node.Node, *sdk.Client) {
	t.Helper()
	n, conn := startNode(t, dir, func(c *node.Config) {
		c.Hosts = node.HostsConfig{DSN: dsn, Types: types, Poll: 20 * time.Millisecond}
		c.Dispatch.LeaseTTL = 2 * time.Second
	})
	t.Cleanup(func() { _ = n.Stop() })
	return n, sdk.NewClient(conn)
}

// runAgent runs an in-process host agent over its own handle on dsn (as a
// separate process would) until the returned stop.
func runAgent(t *testing.T, dsn string, mut func(*agent.Config)) (*agent.Agent, func()) {
	t.Helper()
	tbl, err := table.OpenDSN(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.DefaultConfig("lpar1")
	cfg.Poll, cfg.Lease, cfg.RenewEvery, cfg.StatusEvery = 20*time.Millisecond, time.Second, 200*time.Millisecond, 100*time.Millisecond
	mut(&cfg)
	a, err := agent.New(tbl, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop := func() { cancel(); <-done; _ = tbl.Close() }
	t.Cleanup(stop)
	return a, sync1(stop)
}

func sync1(f func()) func() {
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			f()
		}
	}
}

func TestHostBridge(t *testing.T) {
	suite := func(t *testing.T, fresh func(t *testing.T) string) {
		t.Run("EndToEnd", func(t *testing.T) { testHostEndToEnd(t, fresh(t)) })
		t.Run("AgentDiesTaskRetried", func(t *testing.T) { testHostAgentDies(t, fresh(t)) })
		t.Run("CancelStopsCommand", func(t *testing.T) { testHostCancel(t, fresh(t)) })
		t.Run("NodeRestartKeepsInstruction", func(t *testing.T) { testHostNodeRestart(t, fresh(t)) })
	}
	t.Run("sqlite", func(t *testing.T) {
		suite(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "hosts.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.Start(t)
		suite(t, func(t *testing.T) string { return srv.NewDatabase(t) })
	})
}

func testHostEndToEnd(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, c := startHostNode(t, dsn, "upper", "fails")
	var runs atomic.Int64
	a, _ := runAgent(t, dsn, func(cfg *agent.Config) {
		cfg.Handlers["upper"] = func(_ context.Context, in table.Instruction) ([]byte, error) {
			runs.Add(1)
			return bytes.ToUpper(in.Payload), nil
		}
		cfg.Handlers["fails"] = agent.Command("echo disk full >&2; exit 3")
	})
	var tasks []sdk.Task
	for i := range 40 {
		tasks = append(tasks, sdk.Task{Type: "upper", Payload: fmt.Appendf(nil, "job-%d", i)})
	}
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Wait(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if want := fmt.Sprintf("JOB-%d", i); o.State != messages.StateDone || string(o.Output) != want {
			t.Fatalf("task %d: %v %q %q, want done %q", i, o.State, o.Output, o.Error, want)
		}
	}
	if runs.Load() != 40 {
		t.Errorf("handler ran %d times, want 40", runs.Load())
	}
	fid, err := c.Submit(ctx, sdk.Task{Type: "fails", Payload: []byte("x"), MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	o := waitTerminal(t, ctx, c, fid)
	if o.State != messages.StateDead || !strings.Contains(o.Error, "disk full") || !strings.Contains(o.Error, "exit status 3") || o.Attempts != 2 {
		t.Fatalf("failing command: %+v, want dead after 2 attempts with stderr and exit status", o)
	}
	// The agent reported the host into the node-status table.
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	st, err := tbl.Statuses(ctx)
	if err != nil || len(st) != 1 || st[0].Host != "lpar1" || st[0].Agent != a.ID() || st[0].Procs == 0 || st[0].Reported.IsZero() {
		t.Fatalf("host statuses = %+v, %v", st, err)
	}
}

func waitTerminal(t *testing.T, ctx context.Context, c *sdk.Client, id uint64) messages.Outcome {
	t.Helper()
	for {
		out, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s := out[0].State; s == messages.StateDone || s == messages.StateDead || s == messages.StateCancelled {
			return out[0]
		}
		if ctx.Err() != nil {
			t.Fatalf("task %d not finished: %+v", id, out[0])
		}
	}
}

// testHostAgentDies: an agent takes the instruction and dies (it never
// renews nor answers); its lease expires, the bridge fails the attempt, the
// dispatcher retries, and a live agent runs the new attempt's instruction.
func testHostAgentDies(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, c := startHostNode(t, dsn, "job")
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	id, err := c.Submit(ctx, sdk.Task{Type: "job", Payload: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	// The doomed agent: takes with a short lease, then nothing.
	var first []table.Instruction
	for len(first) == 0 {
		if first, err = tbl.Take(ctx, table.TakeRequest{Host: "lpar1", Taker: "lpar1/doomed", Types: []string{"job"}, Lease: 300 * time.Millisecond, Max: 1}); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("no instruction appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if first[0].TaskID != id || first[0].Attempt != 1 {
		t.Fatalf("instruction %+v, want task %d attempt 1", first[0], id)
	}
	var runs atomic.Int64
	runAgent(t, dsn, func(cfg *agent.Config) {
		cfg.Handlers["job"] = func(_ context.Context, in table.Instruction) ([]byte, error) {
			runs.Add(1)
			return fmt.Appendf(nil, "attempt %d", in.Attempt), nil
		}
	})
	o := waitTerminal(t, ctx, c, id)
	if o.State != messages.StateDone || string(o.Output) != "attempt 2" || runs.Load() != 1 {
		t.Fatalf("outcome %+v after %d runs; want done by attempt 2, run once", o, runs.Load())
	}
	if err := tbl.Complete(ctx, first[0].ID, "lpar1/doomed", []byte("zombie"), ""); err == nil {
		t.Fatal("the dead agent's late result was applied")
	}
	got, _ := tbl.Get(ctx, first[0].ID)
	if len(got) != 1 || got[0].State != table.StateFailed || !strings.Contains(got[0].Error, "lease expired") {
		t.Fatalf("the dead agent's instruction = %+v, want failed: lease expired", got)
	}
	if o, _ := c.Result(ctx, id); string(o.Output) != "attempt 2" {
		t.Fatalf("after the zombie result the task reads %+v", o)
	}
}

// testHostCancel: cancelling the task cancels its instruction; the agent
// hears it at its next renewal and kills the command.
func testHostCancel(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, c := startHostNode(t, dsn, "slow")
	started := filepath.Join(t.TempDir(), "started")
	runAgent(t, dsn, func(cfg *agent.Config) {
		cfg.Handlers["slow"] = agent.Command("touch " + started + "; sleep 60")
	})
	id, err := c.Submit(ctx, sdk.Task{Type: "slow", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	for !fileExists(started) {
		if ctx.Err() != nil {
			t.Fatal("the command never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if o := waitTerminal(t, ctx, c, id); o.State != messages.StateCancelled {
		t.Fatalf("outcome %+v, want cancelled", o)
	}
	// The instruction is failed as cancelled, and the agent leaves it alone.
	for {
		in, err := tbl.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(in) == 1 && in[0].State == table.StateFailed {
			if !strings.Contains(in[0].Error, "cancelled") {
				t.Fatalf("instruction %+v, want failed as cancelled", in[0])
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("instruction not cancelled: %+v", in)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The agent stopped the command (it would sleep a minute): its status
	// shows nothing running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := tbl.Statuses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) == 1 && st[0].Running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled command still runs: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// testHostNodeRestart: a node stopping does not cancel its instructions;
// restarted, it grants the task again with the same attempt, the bridge
// finds the instruction the agent is still running, and the task is done
// by that one run.
func testHostNodeRestart(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	n1, c1 := startHostNodeIn(t, dir, dsn, "long")
	var runs atomic.Int64
	release := make(chan struct{})
	runAgent(t, dsn, func(cfg *agent.Config) {
		cfg.Handlers["long"] = func(ctx context.Context, in table.Instruction) ([]byte, error) {
			runs.Add(1)
			select {
			case <-release:
				return fmt.Appendf(nil, "attempt %d", in.Attempt), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	})
	id, err := c1.Submit(ctx, sdk.Task{Type: "long", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	for runs.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the agent never started the task")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	_, c2 := startHostNodeIn(t, dir, dsn, "long")
	close(release)
	o := waitTerminal(t, ctx, c2, id)
	if o.State != messages.StateDone || string(o.Output) != "attempt 1" || runs.Load() != 1 {
		t.Fatalf("after a node restart: %+v, %d runs; want done by the first attempt's one run", o, runs.Load())
	}
}
