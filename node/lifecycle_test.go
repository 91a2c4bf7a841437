package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/task"
)

func runWorker(t *testing.T, ctx context.Context, conn *sdk.Conn, id string, h sdk.Handler, types ...string) context.CancelFunc {
	t.Helper()
	w := sdk.NewWorker(conn, sdk.WorkerConfig{ID: id, Slots: 4, NoLoad: true})
	for _, typ := range types {
		w.Handle(typ, h)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	return func() { cancel(); <-done }
}

func echo(_ context.Context, t messages.Task) ([]byte, error) { return t.Payload, nil }

func specs(n int, prefix string) []sdk.Task {
	out := make([]sdk.Task, n)
	for i := range out {
		out[i] = sdk.Task{Type: "echo", Payload: fmt.Appendf(nil, "%s-%d", prefix, i), Priority: int32(i % 101)}
	}
	return out
}

func waitAllDone(t *testing.T, ctx context.Context, c *sdk.Client, ids []uint64) []messages.Outcome {
	t.Helper()
	out, err := c.Wait(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.State != messages.StateDone {
			t.Fatalf("task %d: %v (%s)", o.TaskID, o.State, o.Error)
		}
	}
	return out
}

// Tasks past the queues' capacity wait in standby and are refilled; past the
// standby limit intake refuses with an explicit overload error and writes
// nothing.
func TestStandbyRefillAndOverload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(c *node.Config) {
		c.Dispatch.Capacity = [messages.NumClasses]int{10, 10, 10}
		c.Intake.StandbyLimit = 500
		c.Pump.BatchSize = 7
	})
	defer n.Stop()
	c := sdk.NewClient(conn)
	var ids []uint64
	for i := range 4 {
		got, err := c.SubmitBatch(ctx, specs(100, fmt.Sprint("a", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	counts := func() task.Counters {
		c, err := n.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(10 * time.Second)
	for counts().Standby < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := counts().Standby; s < 300 {
		t.Fatalf("standby = %d, want >= 300 with 30 queue places for 400 tasks", s)
	}
	accepted := counts().Accepted
	_, err := c.SubmitBatch(ctx, specs(200, "over"))
	if !errors.Is(err, messages.ErrOverloaded) {
		t.Fatalf("submit past the standby limit: got %v, want overloaded", err)
	}
	if got := counts().Accepted; got != accepted {
		t.Fatalf("a refused batch wrote %d tasks", got-accepted)
	}
	stop := runWorker(t, ctx, conn, "w1", echo, "echo")
	defer stop()
	out := waitAllDone(t, ctx, c, ids)
	for i, o := range out {
		if want := fmt.Sprintf("a%d-%d", i/100, i%100); string(o.Output) != want {
			t.Fatalf("task %d output %q, want %q", i, o.Output, want)
		}
	}
}

// A node stopped with work queued requeues it when started again on the same
// directory, and keeps deduplicating against results finished before.
func TestRestartRequeuesAndRemembers(t *testing.T) {
	testRestartRequeues(t, t.TempDir(), nil)
}

// testRestartRequeues is the restart scenario on the store that dir and mut
// select (postgres_test.go runs it on PostgreSQL).
func testRestartRequeues(t *testing.T, dir string, mut func(*node.Config)) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, dir, mut)
	c := sdk.NewClient(conn)
	var runs atomic.Int64
	count := func(ctx context.Context, t messages.Task) ([]byte, error) { runs.Add(1); return t.Payload, nil }
	stop := runWorker(t, ctx, conn, "w1", count, "echo")
	first, err := c.SubmitBatch(ctx, specs(50, "done-before"))
	if err != nil {
		t.Fatal(err)
	}
	waitAllDone(t, ctx, c, first)
	stop()
	pending, err := c.SubmitBatch(ctx, specs(200, "pending"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	n, conn = startNode(t, dir, mut)
	defer n.Stop()
	c = sdk.NewClient(conn)
	stop = runWorker(t, ctx, conn, "w2", count, "echo")
	defer stop()
	waitAllDone(t, ctx, c, pending)
	again, err := c.SubmitBatch(ctx, specs(50, "done-before"))
	if err != nil {
		t.Fatal(err)
	}
	out := waitAllDone(t, ctx, c, again)
	for i, o := range out {
		if o.AliasOf != first[i] {
			t.Fatalf("resubmitted task %d: alias of %d, want %d", i, o.AliasOf, first[i])
		}
	}
	if got := runs.Load(); got != 250 {
		t.Fatalf("handler ran %d times, want 250", got)
	}
}

// An executor that vanishes with leases loses them after the lease TTL and
// its tasks run elsewhere with the attempt counted.
func TestLeaseExpiryMovesWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(c *node.Config) { c.Dispatch.LeaseTTL = 500 * time.Millisecond })
	defer n.Stop()
	c := sdk.NewClient(conn)
	started := make(chan struct{}, 100)
	hang := func(ctx context.Context, t messages.Task) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	stopA := runWorker(t, ctx, conn, "hanging", hang, "echo")
	ids, err := c.SubmitBatch(ctx, specs(4, "moved"))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		<-started
	}
	stopA() // gone without reporting: its leases can only expire
	stopB := runWorker(t, ctx, conn, "healthy", echo, "echo")
	defer stopB()
	for _, o := range waitAllDone(t, ctx, c, ids) {
		if o.Attempts != 2 {
			t.Fatalf("task %d finished on attempt %d, want 2 (the expired lease counts)", o.TaskID, o.Attempts)
		}
	}
}

// Cancelling a queued task ends it as cancelled; the others still run.
func TestCancelQueued(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	c := sdk.NewClient(conn)
	ids, err := c.SubmitBatch(ctx, specs(3, "c"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Cancel(ctx, ids[1], 999_999)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].State != messages.StateCancelled || res[1].State != messages.StateUnknown {
		t.Fatalf("cancel answers %+v", res)
	}
	stop := runWorker(t, ctx, conn, "w", echo, "echo")
	defer stop()
	out, err := c.Wait(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	want := []messages.TaskState{messages.StateDone, messages.StateCancelled, messages.StateDone}
	for i, o := range out {
		if o.State != want[i] {
			t.Fatalf("task %d: %v, want %v", i, o.State, want[i])
		}
	}
}

// Wait on unfinished tasks reports where each one waits: queued in the
// dispatcher, standby in the store, or attached to a live duplicate.
func TestWaitReportsWhereTasksWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(c *node.Config) {
		c.Dispatch.Capacity = [messages.NumClasses]int{5, 5, 5}
	})
	defer n.Stop()
	c := sdk.NewClient(conn)
	tasks := make([]sdk.Task, 20)
	for i := range tasks {
		tasks[i] = sdk.Task{Type: "echo", Payload: fmt.Appendf(nil, "w-%d", i), Priority: 50}
	}
	// A duplicate of a queued task, in another class so that it is queued
	// (dedupe works at queue insertion) rather than waiting in standby.
	tasks = append(tasks, sdk.Task{Type: "echo", Payload: tasks[0].Payload, Priority: 90})
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	states := map[messages.TaskState]int{}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		out, _ := c.Wait(wctx, ids...)
		wcancel()
		clear(states)
		for _, o := range out {
			states[o.State]++
		}
		if states[messages.StateQueued] == 5 && states[messages.StateStandby] == 15 && states[messages.StateAttached] == 1 {
			return
		}
	}
	t.Fatalf("states %v, want 5 queued, 15 standby, 1 attached", states)
}
