package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// A client routing to owners (sdk.DialConfig.RouteToOwners) on a 3-node
// cluster: its batches are accepted, each task is held by its owner, every
// task completes and runs exactly once. Then n3 leaves: the client's next
// batches are sent with the view it had (n3 still a member) until its
// refresh, and still every task is accepted and runs exactly once.
func TestClusterRouteToOwners(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startCluster(t, 3)
	var journals []string
	for i := range c.remotes {
		journals = append(journals, c.worker(t, i, c.names[i], 8))
	}
	conn, err := sdk.Dial(c.remotes[0], sdk.DialConfig{RouteToOwners: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := sdk.NewClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	submit := func(prefix string, n int) []uint64 {
		t.Helper()
		var ids []uint64
		for b := 0; b < n; b += 100 {
			var tasks []sdk.Task
			for i := b; i < min(b+100, n); i++ {
				tasks = append(tasks, sdk.Task{Type: "echo", Payload: fmt.Appendf(nil, "%s-%d", prefix, i), Priority: messages.DefaultPriority})
			}
			got, err := cl.SubmitBatch(ctx, tasks)
			if err != nil {
				t.Fatalf("batch %s at %d: %v (logs in %s)", prefix, b, err, c.tmp)
			}
			ids = append(ids, got...)
		}
		return ids
	}
	waitDone := func(ids []uint64) map[uint16]int {
		t.Helper()
		out, err := cl.Wait(ctx, ids...)
		if err != nil {
			t.Fatalf("wait: %v (logs in %s)", err, c.tmp)
		}
		holders := map[uint16]int{}
		for i, o := range out {
			if o.TaskID != ids[i] || o.State != messages.StateDone {
				t.Fatalf("task %d: %+v, want done", ids[i], o)
			}
			holders[route.TagOf(o.TaskID)]++
		}
		return holders
	}
	const n = 600
	if h := waitDone(submit("a", n)); len(h) != 3 {
		t.Errorf("tasks are held by %d nodes (%v), want all 3 owners", len(h), h)
	}
	// Cancel goes to the holders too: done tasks stay done.
	first := submit("a", 10) // duplicates of done tasks
	if out, err := cl.Cancel(ctx, first...); err != nil || len(out) != 10 {
		t.Fatalf("cancel: %v, %d outcomes", err, len(out))
	}

	c.procs[2].stop() // n3 leaves; the client's view still has it
	for {
		if st := c.status(t, ctx, c.remotes[0]); st != nil && len(st.Members) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("n1 never saw n3 leave")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if h := waitDone(submit("b", n)); h[route.Tag("n3")] != 0 || len(h) != 2 {
		t.Errorf("after n3 left, tasks are held by %v, want n1 and n2 only", h)
	}
	ex := executions(t, journals...)
	for i := range n {
		for _, p := range []string{"a", "b"} {
			if k := ex[fmt.Sprintf("%s-%d", p, i)]; k != 1 {
				t.Errorf("payload %s-%d ran %d times, want once", p, i, k)
			}
		}
	}
	if len(ex) != 2*n {
		t.Errorf("%d payloads ran, want %d", len(ex), 2*n)
	}
}
