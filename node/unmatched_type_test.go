package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// TestUnmatchedTypeIsReported: with a worker registered, a task of a type no
// worker runs is reported as unplaceable — in status and in Wait's reason,
// naming the type filter — instead of queueing silently; a worker of its
// type runs it.
func TestUnmatchedTypeIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()
	stop := runWorker(t, ctx, conn, "w-echo", echo, "echo")
	defer stop()
	c := sdk.NewClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Executors) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not register")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ids, err := c.SubmitBatch(ctx, []sdk.Task{{Type: "render", Payload: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	for time.Now().Before(deadline) {
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		out, _ := c.Wait(wctx, ids...)
		wcancel()
		if len(out) == 1 && out[0].Reason != "" {
			reason = out[0].Reason
			break
		}
	}
	if !strings.Contains(reason, "type refused 1 (w-echo)") {
		t.Fatalf("Wait reason %q does not say the type filter refused w-echo", reason)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unplaceable) != 1 || st.Unplaceable[0].Type != "render" || st.Counters["unplaceable"] != 1 {
		t.Fatalf("status unplaceable %+v (counter %d), want the render task", st.Unplaceable, st.Counters["unplaceable"])
	}
	stop2 := runWorker(t, ctx, conn, "w-render", echo, "render")
	defer stop2()
	out := waitAllDone(t, ctx, c, ids)
	if out[0].State != messages.StateDone {
		t.Fatalf("render task %v once a worker of its type registered", out[0].State)
	}
}
