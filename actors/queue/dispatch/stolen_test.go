package dispatch

import (
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Stolen tasks run on local executors under the owner's attempt number;
// every outcome (success, failure, expired local lease) goes back to the
// owner as a result, never to dedupe, never retried here, never credited to
// the pump; a revoked stolen task vanishes without a result.
func TestStolenTasksReportToTheirOwner(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "w", 4, []string{"t"}, nil)
	stolen := recs(normal, 1<<48+1, 1<<48+4)
	for i := range stolen {
		stolen[i].Attempts = 1 // the owner granted attempt 2
	}
	fx := m.EnqueueStolen(t0, stolen)
	if len(fx.Stolen) != 0 || fx.Credit != ([messages.NumClasses]int{}) {
		t.Fatalf("enqueue: %+v", fx)
	}
	g := grantTo(pull(m, t0, "w", messages.LoadReport{}), "w")
	if g == nil || len(g.Tasks) != 4 || g.Tasks[0].Attempt != 2 {
		t.Fatalf("grant %+v", g)
	}
	if fx := m.EnqueueStolen(t0, stolen[:1]); len(fx.Stolen) != 1 || fx.Stolen[0].OK {
		t.Fatalf("a stolen id already leased here must be refused: %+v", fx.Stolen)
	}
	ok := messages.Result{TaskID: g.Tasks[0].ID, Attempt: 2, OK: true, Output: []byte("x")}
	bad := messages.Result{TaskID: g.Tasks[1].ID, Attempt: 2, Error: "boom"}
	fx = pull(m, t0, "w", messages.LoadReport{}, ok, bad)
	if len(fx.Finished) != 0 || len(fx.Attempts) != 0 || len(fx.Stolen) != 2 ||
		!fx.Stolen[0].OK || fx.Stolen[1].OK || fx.Stolen[1].Error != "boom" {
		t.Fatalf("results: finished %v attempts %v stolen %+v", fx.Finished, fx.Attempts, fx.Stolen)
	}
	fx = m.Cancel(t0, []uint64{g.Tasks[2].ID})
	if len(fx.Finished) != 0 || len(fx.Stolen) != 0 {
		t.Fatalf("revoked stolen task reported: %+v", fx)
	}
	// The executor goes silent: its last stolen lease is reported failed.
	fx = m.Tick(t0.Add(time.Hour))
	if len(fx.Stolen) != 1 || fx.Stolen[0].TaskID != g.Tasks[3].ID || fx.Stolen[0].OK || fx.Stolen[0].Attempt != 2 || len(fx.Finished) != 0 {
		t.Fatalf("expiry: %+v", fx)
	}
	if m.Queued() != 0 || m.Leases() != 0 {
		t.Fatalf("left behind: queued %d leases %d", m.Queued(), m.Leases())
	}
}

func TestTypesAndFreeSlots(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 3, []string{"x", "y"}, nil)
	register(m, t0, "b", 2, []string{"y", "z"}, nil)
	types, any := m.Types()
	if any || len(types) != 3 || types[0] != "x" || types[2] != "z" || m.FreeSlots() != 5 {
		t.Fatalf("types %v any %v free %d", types, any, m.FreeSlots())
	}
	register(m, t0, "c", 1, nil, nil)
	if _, any := m.Types(); !any {
		t.Fatal("an executor of every type not seen")
	}
}

// TestLostGrantToStealerRequeued: a peer's stealer lists what it holds in
// every heartbeat; a lease it does not list, granted more than
// lostGrantAfter ago, was lost on the way and is requeued, while a recent
// one (its grant may still be in flight) and a listed one stay leased.
func TestLostGrantToStealerRequeued(t *testing.T) {
	m := New(testConfig())
	m.Enqueue(t0, recs(normal, 1, 3))
	id := messages.StealExecutorPrefix + "n2"
	register(m, t0, id, 3, nil, nil)
	if got := taskIDs(grantTo(pull(m, t0, id, noLoad()), id)); len(got) != 3 {
		t.Fatalf("granted %v, want 3 tasks", got)
	}
	// Within the grace: nothing is judged.
	m.Heartbeat(t0.Add(time.Second), &messages.Heartbeat{ExecutorID: id, Held: []uint64{1}})
	if m.HeldBy(id) != 3 {
		t.Fatalf("leases %d within the grace, want 3", m.HeldBy(id))
	}
	m.Heartbeat(t0.Add(lostGrantAfter+time.Second), &messages.Heartbeat{ExecutorID: id, Held: []uint64{1}})
	if m.HeldBy(id) != 1 || m.State(2) == messages.StateLeased || m.State(3) == messages.StateLeased {
		t.Fatalf("after the grace: %d leases, tasks 2 and 3 %v %v; want only task 1 leased", m.HeldBy(id), m.State(2), m.State(3))
	}
	// An ordinary executor's heartbeat without a Held list changes nothing.
	m2 := New(testConfig())
	m2.Enqueue(t0, recs(normal, 1, 2))
	register(m2, t0, "w", 2, nil, nil)
	pull(m2, t0, "w", noLoad())
	m2.Heartbeat(t0.Add(time.Minute/4), &messages.Heartbeat{ExecutorID: "w"})
	if m2.HeldBy("w") != 2 {
		t.Fatalf("a worker's leases %d after a heartbeat without Held, want 2", m2.HeldBy("w"))
	}
}
