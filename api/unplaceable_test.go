package api_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// The reason a task is unplaceable names the dispatch filter that refused
// each executor, in the task's outcome (Wait) and in the status.
func TestUnplaceableReasonNamesRefusingFilter(t *testing.T) {
	e := start(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	w := sdk.NewWorker(e.conn, sdk.WorkerConfig{ID: "w-linux", Slots: 1, NoLoad: true, Capabilities: map[string]string{"os": "linux"}})
	w.Handle("noop", func(context.Context, messages.Task) ([]byte, error) { return nil, nil })
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	const want = "capabilities refused 1 (w-linux)"
	id := e.submit(map[string]any{"type": "noop", "requirements": map[string]string{"os": "=plan9"}})[0]
	var reason string
	for range 200 {
		var raw map[string]any
		e.do("GET", "/v1/tasks/"+strconv.FormatUint(id, 10), nil, &raw)
		if reason, _ = raw["reason"].(string); strings.Contains(reason, want) {
			var st struct {
				Unplaceable []struct {
					Refused string `json:"refused"`
				} `json:"unplaceable"`
			}
			e.do("GET", "/v1/status", nil, &st)
			if len(st.Unplaceable) != 1 || st.Unplaceable[0].Refused != want {
				t.Fatalf("status unplaceable %+v, want refused %q", st.Unplaceable, want)
			}
			return
		}
		time.Sleep(20 * time.Millisecond) // the task reaches dispatch through the pump; the worker registers
	}
	t.Fatalf("reason %q, want it to name the refusing filter: %q", reason, want)
}
