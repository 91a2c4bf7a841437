package node_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// TestTimeoutRetriesThenDead: a handler that hangs (ignoring its context)
// while its executor keeps heartbeating does not hold its lease: each
// attempt fails at its timeout, is retried, and the task is dead after
// MaxAttempts with a timeout error. A handler that watches its context
// sees it cancelled. A type's default timeout applies to tasks naming none.
func TestTimeoutRetriesThenDead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), func(c *node.Config) {
		c.Intake.Timeouts = map[string]time.Duration{"polite": 200 * time.Millisecond}
		c.Dispatch.RetryBase = 50 * time.Millisecond
	})
	defer n.Stop()
	release := make(chan struct{})
	var hung, polite, cancelled atomic.Int64
	stop := runWorker(t, ctx, conn, "w1", func(hctx context.Context, tk messages.Task) ([]byte, error) {
		switch tk.Type {
		case "hang":
			hung.Add(1)
			<-release // hung: ignores its context
			return nil, nil
		default:
			polite.Add(1)
			<-hctx.Done()
			cancelled.Add(1)
			return nil, hctx.Err()
		}
	}, "hang", "polite")
	defer stop()
	defer close(release) // first: the hung handlers return, then the worker stops
	c := sdk.NewClient(conn)
	ids, err := c.SubmitBatch(ctx, []sdk.Task{
		{Type: "hang", Payload: []byte("a"), Priority: 50, MaxAttempts: 3, TimeoutMillis: 300},
		{Type: "polite", Payload: []byte("b"), Priority: 50, MaxAttempts: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Wait(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int32{3, 2} {
		o := out[i]
		if o.State != messages.StateDead || o.Attempts != want || !strings.HasPrefix(o.Error, "timeout: ") {
			t.Errorf("task %d: %v after %d attempts (%q), want dead after %d with a timeout error", i, o.State, o.Attempts, o.Error, want)
		}
	}
	if hung.Load() != 3 || polite.Load() != 2 {
		t.Errorf("handlers ran %d hung and %d polite attempts, want 3 and 2", hung.Load(), polite.Load())
	}
	if cancelled.Load() != 2 {
		t.Errorf("the polite handler saw its context end %d times, want 2", cancelled.Load())
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["timed_out"] < 3 {
		t.Errorf("timed_out counter %d, want >= 3 (the hung task's)", st.Counters["timed_out"])
	}
}

// TestPauseSurvivesRestart: while a task type and a priority class are
// paused nothing of them is granted (they stay queued, with a paused
// reason, and show in status), the paused set survives a node restart on
// the same Pebble directory, and after the resume everything runs.
func TestPauseSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, conn := startNode(t, dir, nil)
	c := sdk.NewClient(conn)
	var ran atomic.Int64
	count := func(_ context.Context, tk messages.Task) ([]byte, error) { ran.Add(1); return tk.Payload, nil }
	stop := runWorker(t, ctx, conn, "w1", count, "echo", "thumb")
	if _, err := c.Pause(ctx, []string{"thumb"}, nil); err != nil {
		t.Fatal(err)
	}
	ack, err := c.Pause(ctx, nil, []string{"low"})
	if err != nil || !slices.Equal(ack.Types, []string{"thumb"}) || !slices.Equal(ack.Classes, []string{"low"}) {
		t.Fatalf("pause: %+v, %v", ack, err)
	}
	if _, err := c.Pause(ctx, nil, []string{"urgent"}); err == nil {
		t.Fatal("pausing an unknown class succeeded")
	}
	var tasks []sdk.Task
	for i := range 5 {
		tasks = append(tasks, sdk.Task{Type: "thumb", Payload: []byte{byte('a' + i)}, Priority: 50})
	}
	tasks = append(tasks, sdk.Task{Type: "echo", Payload: []byte("low"), Priority: 10}, sdk.Task{Type: "echo", Payload: []byte("normal"), Priority: 50})
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	waitAllDone(t, ctx, c, ids[6:]) // the normal echo runs
	held := ids[:6]
	checkHeld := func(when string) {
		t.Helper()
		// A Wait whose deadline passes on queued tasks sometimes gets no
		// answer in time (issue 14 item 10, fixed separately): ask again.
		var out []messages.Outcome
		for try := 0; try < 5 && len(out) != len(held); try++ {
			wctx, wcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			out, _ = c.Wait(wctx, held...)
			wcancel()
		}
		if len(out) != len(held) {
			t.Fatalf("%s: wait answered %d outcomes", when, len(out))
		}
		for _, o := range out {
			if o.State != messages.StateQueued || !strings.HasPrefix(o.Reason, "paused: ") {
				t.Fatalf("%s: task %d is %v (%q), want queued and paused", when, o.TaskID, o.State, o.Reason)
			}
		}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.PausedTypes, []string{"thumb"}) || !slices.Equal(st.PausedClasses, []string{"low"}) || !st.Classes[messages.ClassLow].Paused {
			t.Fatalf("%s: status paused %v %v, classes %+v", when, st.PausedTypes, st.PausedClasses, st.Classes)
		}
	}
	checkHeld("paused")
	if got := ran.Load(); got != 1 {
		t.Fatalf("%d tasks ran while paused, want 1 (the normal echo)", got)
	}
	stop()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	n, conn = startNode(t, dir, nil)
	defer n.Stop()
	c = sdk.NewClient(conn)
	stop = runWorker(t, ctx, conn, "w2", count, "echo", "thumb")
	defer stop()
	checkHeld("after a restart")
	if got := ran.Load(); got != 1 {
		t.Fatalf("%d tasks ran after the restart while paused, want 1", got)
	}
	if _, err := c.Resume(ctx, []string{"thumb"}, nil); err != nil {
		t.Fatal(err)
	}
	waitAllDone(t, ctx, c, ids[:5])
	ack, err = c.Resume(ctx, nil, []string{"low"})
	if err != nil || len(ack.Types)+len(ack.Classes) != 0 {
		t.Fatalf("resume: %+v, %v", ack, err)
	}
	waitAllDone(t, ctx, c, ids[5:6])
	if got := ran.Load(); got != 7 {
		t.Fatalf("%d tasks ran, want 7", got)
	}
}
