package agent_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
)

func TestCommand(t *testing.T) {
	in := table.Instruction{ID: 3, TaskID: 42, Attempt: 2, Type: "t", Payload: []byte("abc")}
	out, err := agent.Command(`tr a-z A-Z; echo " $SHOAL_TASK_ID $SHOAL_ATTEMPT $SHOAL_INSTRUCTION $SHOAL_TYPE"`)(t.Context(), in)
	if err != nil || string(out) != "ABC 42 2 3 t\n" {
		t.Fatalf("Command = %q, %v", out, err)
	}
	_, err = agent.Command("echo partial; echo no such table >&2; exit 7")(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("failing Command = %v, want the exit status and stderr", err)
	}
	// Cancelled: the whole process group goes, at once.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := agent.Command("sleep 30 & sleep 30; wait")(ctx, in); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled Command = %v, want the context's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled command was not killed")
	}
}

func openTable(t *testing.T) (table.Table, string) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "hosts.db")
	tb, err := table.OpenDSN(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	return tb, dsn
}

func startAgent(t *testing.T, tb table.Table, h agent.Handler, mut func(*agent.Config)) (*agent.Agent, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	cfg := agent.DefaultConfig("h")
	cfg.Handlers["t"] = h
	cfg.Poll, cfg.Lease, cfg.RenewEvery, cfg.StatusEvery = 10*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond, time.Hour
	if mut != nil {
		mut(&cfg)
	}
	a, err := agent.New(tb, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, cancel, done
}

func waitState(t *testing.T, tb table.Table, id int64, want table.State) table.Instruction {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := tb.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].State == want {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("instruction %d: %+v, want %s", id, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRenewKeepsLease: a handler running for several lease lengths is not
// reaped, and its result lands.
func TestRenewKeepsLease(t *testing.T) {
	tb, _ := openTable(t)
	in, err := tb.Put(t.Context(), table.Instruction{TaskID: 1, Attempt: 1, Type: "t", Payload: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := startAgent(t, tb, func(ctx context.Context, in table.Instruction) ([]byte, error) {
		select {
		case <-time.After(time.Second): // > 3 leases
			return append([]byte("ran "), in.Payload...), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil)
	waitState(t, tb, in.ID, table.StateTaken)
	for range 10 {
		if n, err := tb.Reap(t.Context()); n != 0 || err != nil {
			t.Fatalf("Reap of a renewed lease = %d, %v", n, err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	got := waitState(t, tb, in.ID, table.StateDone)
	if string(got.Result) != "ran p" || got.Taker != a.ID() {
		t.Fatalf("result %+v", got)
	}
}

// TestLostInstructionStopsHandler: an instruction cancelled under a
// running handler stops it at the next renewal, and nothing is written.
func TestLostInstructionStopsHandler(t *testing.T) {
	tb, _ := openTable(t)
	in, _ := tb.Put(t.Context(), table.Instruction{TaskID: 1, Attempt: 1, Type: "t"})
	stopped := make(chan struct{})
	startAgent(t, tb, func(ctx context.Context, _ table.Instruction) ([]byte, error) {
		<-ctx.Done()
		close(stopped)
		return []byte("should not land"), nil
	}, nil)
	waitState(t, tb, in.ID, table.StateTaken)
	if ok, err := tb.Cancel(t.Context(), in.ID, "cancelled by test"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of a cancelled instruction kept running")
	}
	if got := waitState(t, tb, in.ID, table.StateFailed); got.Error != "cancelled by test" {
		t.Fatalf("instruction %+v: the agent overwrote the cancel", got)
	}
}

// TestStopFailsRunning: an agent told to stop fails what it runs at once
// (the node retries without waiting out a lease) and stops taking.
func TestStopFailsRunning(t *testing.T) {
	tb, _ := openTable(t)
	in, _ := tb.Put(t.Context(), table.Instruction{TaskID: 1, Attempt: 1, Type: "t"})
	a, cancel, done := startAgent(t, tb, agent.Command("sleep 30"), func(c *agent.Config) { c.Lease, c.RenewEvery = time.Hour, time.Minute })
	waitState(t, tb, in.ID, table.StateTaken)
	cancel()
	<-done
	got := waitState(t, tb, in.ID, table.StateFailed)
	if !strings.Contains(got.Error, "stopping") || !strings.Contains(got.Error, a.ID()) {
		t.Fatalf("instruction %+v, want failed as the agent stopping", got)
	}
	later, _ := tb.Put(t.Context(), table.Instruction{TaskID: 2, Attempt: 1, Type: "t"})
	time.Sleep(50 * time.Millisecond)
	if g, _ := tb.Get(t.Context(), later.ID); g[0].State != table.StateNew {
		t.Fatalf("a stopped agent took %+v", g[0])
	}
}

// TestReport: the host's status is written at start.
func TestReport(t *testing.T) {
	tb, _ := openTable(t)
	a, _, _ := startAgent(t, tb, func(context.Context, table.Instruction) ([]byte, error) { return nil, nil }, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := tb.Statuses(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(st) == 1 {
			s := st[0]
			if s.Host != "h" || s.Agent != a.ID() || len(s.Types) != 1 || s.Types[0] != "t" || s.Mem <= 0 || s.Procs == 0 || s.Disk <= 0 {
				t.Fatalf("status %+v", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no status reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := agent.DefaultConfig("h")
	ok.Handlers["t"] = agent.Command("true")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*agent.Config){
		"Host":        func(c *agent.Config) { c.Host = "" },
		"Handlers":    func(c *agent.Config) { c.Handlers = nil },
		"Slots":       func(c *agent.Config) { c.Slots = 0 },
		"Poll":        func(c *agent.Config) { c.Poll = 0 },
		"RenewEvery":  func(c *agent.Config) { c.RenewEvery = c.Lease },
		"StatusEvery": func(c *agent.Config) { c.StatusEvery = -1 },
	} {
		c := ok
		c.Handlers = map[string]agent.Handler{"t": agent.Command("true")}
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v, want an error naming it", name, err)
		}
	}
}
