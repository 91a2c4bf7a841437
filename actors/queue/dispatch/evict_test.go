package dispatch

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

func TestEvictRequeuesAtOnceAndFencesLateResults(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 2, nil, nil)
	register(m, t0, "b", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	if got := taskIDs(grantTo(pull(m, t0, "a", noLoad()), "a")); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("a granted %v, want [1 2]", got)
	}
	pull(m, t0, "b", noLoad()) // b parks: nothing queued

	// Long before LeaseTTL, a is evicted: b gets both tasks at once, with
	// the attempt counted.
	fx := m.Evict(t0.Add(time.Millisecond), "a", "process exited")
	g := grantTo(fx, "b")
	if got := taskIDs(g); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("after evicting a, b granted %v, want [1 2]", got)
	}
	for _, tk := range g.Tasks {
		if tk.Attempt != 2 {
			t.Errorf("task %d attempt %d, want 2 (the evicted attempt counts)", tk.ID, tk.Attempt)
		}
	}
	if want := []store.AttemptUpdate{{ID: 1, Attempts: 1}, {ID: 2, Attempts: 1}}; !slices.Equal(fx.Attempts, want) {
		t.Errorf("attempts persisted %v, want %v", fx.Attempts, want)
	}
	if m.Counters.Evicted != 2 || m.Known("a") {
		t.Errorf("evicted %d, a known %v; want 2, false", m.Counters.Evicted, m.Known("a"))
	}
	// a's late result is fenced and a is told to register again.
	fx = pull(m, t0.Add(2*time.Millisecond), "a", noLoad(), ok(1, 1))
	if len(fx.Finished) != 0 || m.Counters.Stale != 1 {
		t.Fatalf("late result of the evicted executor: finished %v, stale %d; want none, 1", fx.Finished, m.Counters.Stale)
	}
	if len(fx.Replies) != 1 || fx.Replies[0].Msg.(*messages.Grant).Err.Code != messages.CodeUnknownExecutor {
		t.Fatalf("evicted executor not told to register: %+v", fx.Replies)
	}
	// b's results finish them.
	fx = pull(m, t0.Add(3*time.Millisecond), "b", noLoad(), ok(1, 2), ok(2, 2))
	if len(fx.Finished) != 2 {
		t.Fatalf("b's results finished %d tasks, want 2", len(fx.Finished))
	}
	// Evicting an unknown executor is a no-op.
	if fx := m.Evict(t0, "nobody", "x"); len(fx.Grants)+len(fx.Finished) != 0 {
		t.Fatalf("evicting an unknown executor did something: %+v", fx)
	}
}

func TestEvictLastAttemptIsDead(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	r := rec(1, normal, 50)
	r.MaxAttempts = 1
	m.Enqueue(t0, []task.Record{r})
	pull(m, t0, "a", noLoad())
	fx := m.Evict(t0, "a", "health check failed")
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead {
		t.Fatalf("evicting the last attempt: %+v, want one dead result", fx.Finished)
	}
}

func TestSleepWakeDrain(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	register(m, t0, "b", 1, []string{"other"}, nil)
	pull(m, t0, "a", noLoad())
	pull(m, t0, "b", noLoad())

	// A parked executor put to sleep is answered with Grant{Sleep}.
	fx, err := m.SetState(t0, "a", messages.ExecSleeping)
	if err != nil {
		t.Fatal(err)
	}
	if g := grantTo(fx, "a"); g == nil || !g.Sleep || g.HeartbeatMillis != m.SleepHeartbeat().Milliseconds() {
		t.Fatalf("sleep grant %+v", g)
	}
	if st, _ := m.StateOf("a"); st != messages.ExecSleeping {
		t.Fatalf("state %q, want sleeping", st)
	}
	// A pull while sleeping is answered with sleep again.
	if g := grantTo(pull(m, t0, "a", noLoad()), "a"); g == nil || !g.Sleep {
		t.Fatalf("pull while sleeping answered %+v", g)
	}
	// Work b cannot run wakes a with the task in the waking grant.
	fx = m.Enqueue(t0, recs(normal, 1, 1))
	g := grantTo(fx, "a")
	if g == nil || g.Sleep || !slices.Equal(taskIDs(g), []uint64{1}) {
		t.Fatalf("enqueue did not wake a with task 1: %+v", fx.Grants)
	}
	if m.Counters.Slept != 1 || m.Counters.Woken != 1 {
		t.Fatalf("slept %d woken %d", m.Counters.Slept, m.Counters.Woken)
	}

	// Draining: the lease finishes, nothing new is granted.
	if _, err := m.SetState(t0, "a", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	m.Enqueue(t0, recs(normal, 2, 2))
	fx = pull(m, t0, "a", noLoad(), ok(1, 1))
	if len(fx.Finished) != 1 || grantTo(fx, "a") != nil {
		t.Fatalf("draining: finished %d, grant %+v; want 1, none", len(fx.Finished), grantTo(fx, "a"))
	}
	ex := m.Executors()[0]
	if ex.State != messages.ExecDraining || ex.Leases != 0 || ex.IdleSince != t0.UnixMilli() {
		t.Fatalf("status %+v", ex)
	}
	// Undrain: the parked pull is served.
	fx, _ = m.SetState(t0, "a", messages.ExecActive)
	if got := taskIDs(grantTo(fx, "a")); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("undrained a granted %v, want [2]", got)
	}
	// Asleep, then drained, then undrained: it is woken (it pulls no more
	// on its own).
	pull(m, t0, "a", noLoad())
	m.SetState(t0, "a", messages.ExecSleeping)
	m.SetState(t0, "a", messages.ExecDraining)
	fx, _ = m.SetState(t0, "a", messages.ExecActive)
	if g := grantTo(fx, "a"); g == nil || g.Sleep {
		t.Fatalf("undraining a sleeper sent %+v, want a waking grant", g)
	}
	// Errors are typed.
	if _, err := m.SetState(t0, "zz", messages.ExecDraining); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("unknown executor: %v", err)
	}
	if _, err := m.SetState(t0, "a", "dancing"); !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
}

func TestUnhealthyHeartbeatShownInStatus(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	m.Heartbeat(t0, &messages.Heartbeat{ExecutorID: "a", Unhealthy: "disk full"})
	if got := m.Executors()[0].Unhealthy; got != "disk full" {
		t.Fatalf("unhealthy %q", got)
	}
	m.Heartbeat(t0, &messages.Heartbeat{ExecutorID: "a"})
	if got := m.Executors()[0].Unhealthy; got != "" {
		t.Fatalf("healthy heartbeat left %q", got)
	}
}
