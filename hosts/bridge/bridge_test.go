package bridge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/bridge"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
)

func setup(t *testing.T) (*bridge.Bridge, table.Table) {
	t.Helper()
	tb, err := table.OpenDSN(t.Context(), filepath.Join(t.TempDir(), "hosts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	cfg := bridge.DefaultConfig("node-1", "t")
	cfg.Poll = 10 * time.Millisecond
	b, err := bridge.New(tb, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, tb
}

type answer struct {
	out []byte
	err error
}

func handle(b *bridge.Bridge, ctx context.Context, task messages.Task) <-chan answer {
	ch := make(chan answer, 1)
	go func() { out, err := b.Handle(ctx, task); ch <- answer{out, err} }()
	return ch
}

// takeOne plays the agent: it takes the next instruction.
func takeOne(t *testing.T, tb table.Table) table.Instruction {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got, err := tb.Take(t.Context(), table.TakeRequest{Taker: "agent", Types: []string{"t"}, Lease: time.Minute, Max: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			return got[0]
		}
	}
	t.Fatal("no instruction written")
	return table.Instruction{}
}

func wait(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return")
		return answer{}
	}
}

func TestResultAndFailure(t *testing.T) {
	b, tb := setup(t)
	ch := handle(b, t.Context(), messages.Task{ID: 7, Attempt: 1, Type: "t", Payload: []byte("in")})
	in := takeOne(t, tb)
	if in.Node != "node-1" || in.TaskID != 7 || in.Attempt != 1 || string(in.Payload) != "in" {
		t.Fatalf("instruction %+v", in)
	}
	if err := tb.Complete(t.Context(), in.ID, "agent", []byte("out"), ""); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, ch); a.err != nil || string(a.out) != "out" {
		t.Fatalf("Handle = %q, %v", a.out, a.err)
	}
	ch = handle(b, t.Context(), messages.Task{ID: 8, Attempt: 1, Type: "t"})
	in = takeOne(t, tb)
	if err := tb.Complete(t.Context(), in.ID, "agent", nil, "exit status 1: no"); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, ch); a.err == nil || !strings.Contains(a.err.Error(), "exit status 1: no") {
		t.Fatalf("Handle of a failed instruction = %v", a.err)
	}
	// The same attempt granted again (a restarted node) gets the answer at once.
	if out, err := b.Handle(t.Context(), messages.Task{ID: 7, Attempt: 1, Type: "t"}); err != nil || string(out) != "out" {
		t.Fatalf("re-granted attempt = %q, %v", out, err)
	}
}

func TestCancelFailsInstruction(t *testing.T) {
	b, tb := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := handle(b, ctx, messages.Task{ID: 1, Attempt: 1, Type: "t"})
	in := takeOne(t, tb)
	cancel()
	if a := wait(t, ch); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled Handle = %v", a.err)
	}
	got, _ := tb.Get(t.Context(), in.ID)
	if got[0].State != table.StateFailed || !strings.Contains(got[0].Error, "cancelled by the node") {
		t.Fatalf("instruction after cancel: %+v", got[0])
	}
	if err := tb.Complete(t.Context(), in.ID, "agent", []byte("late"), ""); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("a result after the cancel = %v, want ErrNotTaken", err)
	}
}

func TestLeaveKeepsInstruction(t *testing.T) {
	b, tb := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := handle(b, ctx, messages.Task{ID: 1, Attempt: 1, Type: "t"})
	in := takeOne(t, tb)
	b.Leave()
	cancel()
	wait(t, ch)
	if got, _ := tb.Get(t.Context(), in.ID); got[0].State != table.StateTaken {
		t.Fatalf("instruction after the node left: %+v, want still taken", got[0])
	}
}

func TestExpiredLeaseFails(t *testing.T) {
	b, tb := setup(t)
	ch := handle(b, t.Context(), messages.Task{ID: 1, Attempt: 1, Type: "t"})
	for {
		got, err := tb.Take(t.Context(), table.TakeRequest{Taker: "doomed", Types: []string{"t"}, Lease: 50 * time.Millisecond, Max: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a := wait(t, ch); a.err == nil || !strings.Contains(a.err.Error(), "lease expired") || !strings.Contains(a.err.Error(), "doomed") {
		t.Fatalf("Handle after the taker died = %v, want the lease expiry", a.err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]bridge.Config{
		"Node":  bridge.DefaultConfig("", "t"),
		"Types": bridge.DefaultConfig("n"),
		"Poll":  func() bridge.Config { c := bridge.DefaultConfig("n", "t"); c.Poll = 0; return c }(),
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v, want an error naming it", name, err)
		}
	}
}
