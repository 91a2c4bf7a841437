package dispatch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// TestTimeoutFailsAHungAttempt: an executor that keeps heartbeating does
// not keep a timed task: at its deadline the lease is revoked (the next
// grant's Cancel) and the attempt fails with a timeout error, retried
// with backoff, and dead after MaxAttempts. Heartbeats before the
// deadline change nothing.
func TestTimeoutFailsAHungAttempt(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	r := rec(1, normal, 50)
	r.TimeoutMillis, r.MaxAttempts = 1000, 2
	m.Enqueue(t0, []task.Record{r})
	now := t0
	for attempt := int32(1); attempt <= 2; attempt++ {
		g := grantTo(pull(m, now, "a", messages.LoadReport{}), "a")
		if g == nil || len(g.Tasks) != 1 || g.Tasks[0].Attempt != attempt || g.Tasks[0].TimeoutMillis != 1000 {
			t.Fatalf("attempt %d: grant %+v", attempt, g)
		}
		start := now
		for range 9 { // heartbeats and ticks up to just before the deadline
			now = now.Add(100 * time.Millisecond)
			m.Heartbeat(now, &messages.Heartbeat{ExecutorID: "a", Held: []uint64{1}})
			if fx := m.Tick(now); len(fx.Finished) > 0 || len(fx.Attempts) > 0 {
				t.Fatalf("attempt %d: failed before its deadline: %+v", attempt, fx)
			}
		}
		now = start.Add(time.Second)
		fx := m.Tick(now)
		if m.Counters.TimedOut != int64(attempt) {
			t.Fatalf("attempt %d: TimedOut = %d", attempt, m.Counters.TimedOut)
		}
		if attempt == 2 {
			if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead || !strings.HasPrefix(fx.Finished[0].Error, TimeoutPrefix) {
				t.Fatalf("last attempt: finished %+v, want dead with a timeout error", fx.Finished)
			}
			break
		}
		if len(fx.Attempts) != 1 || fx.Attempts[0].Attempts != 1 || m.State(1) != messages.StateFailed {
			t.Fatalf("attempt 1: attempts %+v, state %v; want a retry", fx.Attempts, m.State(1))
		}
		// The parked pull... the executor pulls again: its grant revokes the lease.
		g = grantTo(pull(m, now, "a", messages.LoadReport{}), "a")
		if g == nil || !slices.Contains(g.Cancel, 1) {
			t.Fatalf("after the timeout: grant %+v, want lease 1 revoked", g)
		}
		// Its late result is stale.
		stale := m.Counters.Stale
		m.Heartbeat(now, &messages.Heartbeat{ExecutorID: "a", Results: []messages.Result{failed(1, 1)}})
		if m.Counters.Stale != stale+1 {
			t.Fatalf("late result of the timed-out attempt was not fenced")
		}
		now = now.Add(m.Backoff(1))
		m.Tick(now)
	}
}

// TestNoTimeoutNoDeadline: a task without a timeout is never failed by
// Tick while its executor heartbeats.
func TestNoTimeoutNoDeadline(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "a", messages.LoadReport{})
	for i := 1; i < 100; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		m.Heartbeat(now, &messages.Heartbeat{ExecutorID: "a"})
		if fx := m.Tick(now); len(fx.Finished)+len(fx.Attempts) > 0 {
			t.Fatalf("untimed task failed at %v: %+v", now.Sub(t0), fx)
		}
	}
	if m.State(1) != messages.StateLeased {
		t.Fatalf("state %v", m.State(1))
	}
}

// TestPauseTypeAndClass: nothing of a paused type or class is granted;
// the tasks stay queued (state, queue length, a Wait reason) and are
// granted after the resume; cancelling a held task works.
func TestPauseTypeAndClass(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 10, nil, nil)
	var rs []task.Record
	for id := uint64(1); id <= 6; id++ {
		r := rec(id, normal, 50)
		if id <= 3 {
			r.Type = "resize"
		}
		if id == 6 {
			r.Class, r.Priority = low, 10
		}
		rs = append(rs, r)
	}
	m.SetPaused(t0, task.Paused{Types: []string{"resize"}, Classes: []messages.Class{low}})
	m.Enqueue(t0, rs[:2])
	m.SetPaused(t0, task.Paused{Types: []string{"resize"}, Classes: []messages.Class{low}}) // unchanged: no-op
	m.Enqueue(t0, rs[2:])
	g := grantTo(pull(m, t0, "a", messages.LoadReport{}), "a")
	if got := taskIDs(g); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("granted %v while resize and low are paused, want [4 5]", got)
	}
	for _, id := range []uint64{1, 2, 3, 6} {
		if m.State(id) != messages.StateQueued || !strings.HasPrefix(m.Reason(id), "paused: ") {
			t.Errorf("task %d: state %v, reason %q; want queued and paused", id, m.State(id), m.Reason(id))
		}
	}
	if m.QueueLen(normal) != 3 || m.QueueLen(low) != 1 {
		t.Errorf("queue lengths %d normal, %d low; want 3, 1", m.QueueLen(normal), m.QueueLen(low))
	}
	if fx := m.Cancel(t0, []uint64{2}); len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateCancelled {
		t.Fatalf("cancel a held task: %+v", fx.Finished)
	}
	// The executor parks; resuming the type serves it at once, in id order.
	pull(m, t0, "a", messages.LoadReport{})
	fx := m.SetPaused(t0, task.Paused{Classes: []messages.Class{low}})
	if got := taskIDs(grantTo(fx, "a")); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("resume resize: granted %v, want [1 3]", got)
	}
	pull(m, t0, "a", messages.LoadReport{})
	if got := taskIDs(grantTo(m.SetPaused(t0, task.Paused{}), "a")); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("resume low: granted %v, want [6]", got)
	}
	if !m.Paused().Empty() || m.QueueLen(normal)+m.QueueLen(low) != 0 {
		t.Fatalf("after resuming all: paused %+v, queued %d", m.Paused(), m.Queued())
	}
}

// TestPausedRetryIsHeld: a retry of a paused type comes due into the hold
// list, not a grant.
func TestPausedRetryIsHeld(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "a", messages.LoadReport{})
	m.SetPaused(t0, task.Paused{Types: []string{"t"}})
	pull(m, t0, "a", messages.LoadReport{}, failed(1, 1))
	now := t0.Add(time.Minute)
	fx := m.Tick(now)
	if g := grantTo(fx, "a"); g != nil && len(g.Tasks) > 0 {
		t.Fatalf("paused retry granted: %+v", g)
	}
	if m.State(1) != messages.StateQueued || m.Reason(1) == "" {
		t.Fatalf("state %v reason %q", m.State(1), m.Reason(1))
	}
}

// TestDeadlineHeapHoldsLiveLeasesOnly: a timed lease that ends before its
// deadline leaves the deadline heap at once (long timeouts at high rates
// would otherwise keep every grant of the last timeout in memory).
func TestDeadlineHeapHoldsLiveLeasesOnly(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 100, nil, nil)
	var rs []task.Record
	for id := uint64(1); id <= 50; id++ {
		r := rec(id, normal, 50)
		r.TimeoutMillis = 3_600_000
		rs = append(rs, r)
	}
	m.Enqueue(t0, rs)
	pull(m, t0, "a", messages.LoadReport{})
	if len(m.deadlines) != 50 {
		t.Fatalf("%d deadlines for 50 timed leases", len(m.deadlines))
	}
	var results []messages.Result
	for id := uint64(1); id <= 40; id++ {
		results = append(results, ok(id, 1))
	}
	pull(m, t0, "a", messages.LoadReport{}, results...)
	m.Cancel(t0, []uint64{41, 42})
	if len(m.deadlines) != 8 {
		t.Fatalf("%d deadlines left, want 8 (the live leases)", len(m.deadlines))
	}
	for i, le := range m.deadlines {
		if le.heapAt != i || m.leases[le.e.rec.ID] != le {
			t.Fatalf("deadline %d: heapAt %d, live %v", i, le.heapAt, m.leases[le.e.rec.ID] == le)
		}
	}
	m.Heartbeat(t0.Add(time.Hour), &messages.Heartbeat{ExecutorID: "a"}) // not silent: the timeouts fail them
	fx := m.Tick(t0.Add(time.Hour))
	if m.Counters.TimedOut != 8 || len(m.deadlines) != 0 || len(fx.Attempts) != 8 {
		t.Fatalf("at the deadline: timed out %d, heap %d, retries %d", m.Counters.TimedOut, len(m.deadlines), len(fx.Attempts))
	}
}
