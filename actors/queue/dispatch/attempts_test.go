package dispatch

import (
	"slices"
	"testing"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Every grant counts the attempt it starts (issue 15): the shell makes the
// count durable before the grant goes out, so a run the node's death
// interrupts is counted when the task runs again after recovery.
func TestGrantRecordsAttemptStart(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 2, nil, nil)
	r := rec(2, normal, 50)
	r.Attempts = 1 // its first run was interrupted
	m.Enqueue(t0, []task.Record{rec(1, normal, 50), r})
	fx := pull(m, t0, "e", noLoad())
	if g := grantTo(fx, "e"); g == nil || len(g.Tasks) != 2 {
		t.Fatalf("grant %+v", g)
	}
	want := []store.AttemptUpdate{{ID: 1, Attempts: 1}, {ID: 2, Attempts: 2}}
	if !slices.Equal(fx.Starts, want) {
		t.Fatalf("starts %v, want %v", fx.Attempts, want)
	}
	// A success writes no count: the start's stands.
	if fx := pull(m, t0, "e", noLoad(), ok(1, 1), ok(2, 2)); len(fx.Attempts)+len(fx.Starts) != 0 || len(fx.Finished) != 2 || fx.Finished[1].Attempts != 2 {
		t.Fatalf("results: %+v", fx)
	}
}

// A task recovered with all its attempts started (each interrupted by the
// node stopping: a task that kills its node) is dead at once, its place
// handed back, instead of running forever.
func TestInterruptedLastAttemptIsDead(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	r := rec(1, high, 90)
	r.Attempts = r.MaxAttempts
	fx := m.Enqueue(t0, []task.Record{r})
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead || fx.Finished[0].Attempts != r.MaxAttempts || fx.Finished[0].Error == "" {
		t.Fatalf("recovered with %d of %d attempts started: %+v", r.Attempts, r.MaxAttempts, fx)
	}
	if fx.Credit[high] != 1 || m.Queued() != 0 || m.Counters.Dead != 1 {
		t.Fatalf("credit %v, queued %d, dead %d", fx.Credit, m.Queued(), m.Counters.Dead)
	}
	if g := grantTo(pull(m, t0, "e", noLoad()), "e"); g != nil && len(g.Tasks) != 0 {
		t.Fatalf("dead task granted: %+v", g)
	}
}
