package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

func grantedIDs(g *messages.Grant) []uint64 {
	if g == nil {
		return nil
	}
	var ids []uint64
	for _, t := range g.Tasks {
		ids = append(ids, t.ID)
	}
	return ids
}

func TestUnplaceableSetAsideAndReexamined(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "linux", 2, nil, map[string]string{"os": "linux"})
	mac := rec(1, normal, 50)
	mac.Requirements = map[string]string{"os": "=macos", "xcode": ">= 15.0, < 16", messages.ReqSize: "=3"}
	m.Enqueue(t0, append(recs(normal, 2, 3), mac))
	if got := m.UnplaceableCount(); got != 1 {
		t.Fatalf("set aside %d, want 1", got)
	}
	u := m.Unplaceable()
	if len(u) != 1 || u[0].Shape != "os=macos; xcode >= 15.0, < 16" || u[0].Tasks != 1 {
		t.Fatalf("unplaceable = %+v", u)
	}
	if r := m.Reason(1); !strings.Contains(r, "xcode >= 15.0, < 16") {
		t.Fatalf("reason = %q", r)
	}
	if m.State(1) != messages.StateQueued || m.Queued() != 2 {
		t.Fatalf("state %v, queued %d", m.State(1), m.Queued())
	}
	// The set-aside task does not block the others.
	if ids := grantedIDs(grantTo(pull(m, t0, "linux", messages.LoadReport{}), "linux")); len(ids) != 2 {
		t.Fatalf("linux granted %v, want tasks 2 and 3", ids)
	}
	// A too-old Xcode does not help.
	register(m, t0, "mac14", 1, nil, map[string]string{"os": "macos", "xcode": "14.3"})
	if m.UnplaceableCount() != 1 {
		t.Fatal("task left the set-aside list for an executor that cannot run it")
	}
	register(m, t0, "mac15", 1, nil, map[string]string{"os": "macos", "xcode": "15.2.0"})
	if m.UnplaceableCount() != 0 || m.Queued() != 1 || m.Reason(1) != "" {
		t.Fatalf("after a capable executor registered: aside %d, queued %d", m.UnplaceableCount(), m.Queued())
	}
	if ids := grantedIDs(grantTo(pull(m, t0, "mac15", messages.LoadReport{}), "mac15")); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("mac15 granted %v, want [1]", ids)
	}
}

func TestUnplaceableAfterExecutorLeaves(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "gpu", 1, nil, map[string]string{"gpu": "a100"})
	register(m, t0, "cpu", 1, nil, nil)
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{"gpu": "=a100"}
	m.Enqueue(t0, append(recs(normal, 2, 2), r))
	if m.UnplaceableCount() != 0 {
		t.Fatal("placeable task set aside")
	}
	later := t0.Add(testConfig().LeaseTTL + time.Second)
	pull(m, later, "cpu", messages.LoadReport{}) // cpu stays, gpu goes silent
	m.Tick(later)
	if m.Known("gpu") || m.UnplaceableCount() != 1 || m.Queued() != 0 {
		t.Fatalf("after gpu left: aside %d, queued %d", m.UnplaceableCount(), m.Queued())
	}
	// Cancel reaches a set-aside task.
	fx := m.Cancel(later, []uint64{1})
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateCancelled || fx.Credit[normal] != 1 || m.UnplaceableCount() != 0 {
		t.Fatalf("cancel of a set-aside task: %+v", fx)
	}
}

func TestPinnedTaskRunsOnlyOnItsExecutor(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 4, nil, nil)
	register(m, t0, "b", 4, nil, nil)
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{messages.ReqPin: "=b"}
	m.Enqueue(t0, []task.Record{r})
	if ids := grantedIDs(grantTo(pull(m, t0, "a", messages.LoadReport{}), "a")); len(ids) != 0 {
		t.Fatalf("a granted %v", ids)
	}
	if ids := grantedIDs(grantTo(pull(m, t0, "b", messages.LoadReport{}), "b")); len(ids) != 1 {
		t.Fatalf("b granted %v", ids)
	}
	// Pinned to an executor nobody knows: set aside, reported.
	r2 := rec(2, normal, 50)
	r2.Requirements = map[string]string{messages.ReqPin: "=gone"}
	m.Enqueue(t0, []task.Record{r2})
	if m.UnplaceableCount() != 1 || !strings.Contains(m.Reason(2), "shoal.executor=gone") {
		t.Fatalf("pinned to an unknown executor: aside %d, reason %q", m.UnplaceableCount(), m.Reason(2))
	}
}

func TestRunEstimatesBySizeBucket(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	small, big := rec(1, normal, 50), rec(2, normal, 50)
	small.Requirements, small.Size = map[string]string{messages.ReqSize: "=1"}, 1
	big.Requirements, big.Size = map[string]string{messages.ReqSize: "=100"}, 100
	m.Enqueue(t0, []task.Record{small})
	g := grantTo(pull(m, t0, "e", messages.LoadReport{}), "e")
	m.Enqueue(t0, []task.Record{big})
	g2 := grantTo(pull(m, t0, "e", messages.LoadReport{}, messages.Result{TaskID: 1, Attempt: g.Tasks[0].Attempt, OK: true, RunNanos: 1e6}), "e")
	pull(m, t0, "e", messages.LoadReport{}, messages.Result{TaskID: 2, Attempt: g2.Tasks[0].Attempt, OK: true, RunNanos: 100e6})
	if s, b := m.RunEstimate("t", 1), m.RunEstimate("t", 100); s != 1e6 || b != 100e6 {
		t.Fatalf("estimates small %v, big %v", s, b)
	}
	if m.RunEstimate("t", 1.5) != 1e6 { // same power-of-two bucket as 1
		t.Fatalf("size 1.5 estimate %v", m.RunEstimate("t", 1.5))
	}
}

func TestParkedServedByEarliestFinish(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "busy", 2, nil, nil)
	register(m, t0, "idle", 2, nil, nil)
	// busy holds a long task (its backlog), then both park.
	long := rec(1, normal, 50)
	long.Requirements = map[string]string{messages.ReqPin: "=busy"}
	m.Enqueue(t0, []task.Record{long})
	pull(m, t0, "busy", messages.LoadReport{})
	m.execs["busy"].backlog = float64(10 * time.Second) // as if estimated
	pull(m, t0, "busy", messages.LoadReport{})          // parks (nothing queued)
	pull(m, t0, "idle", messages.LoadReport{})          // parks
	fx := m.Enqueue(t0, recs(normal, 2, 2))
	if ids := grantedIDs(grantTo(fx, "idle")); len(ids) != 1 {
		t.Fatalf("the idle executor should get the task first; grants %+v", fx.Grants)
	}
}

func TestDrainAndEvictSetAside(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "gpu", 1, nil, map[string]string{"gpu": "a100"})
	register(m, t0, "cpu", 1, nil, nil)
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{"gpu": "=a100"}
	m.Enqueue(t0, []task.Record{r})
	if _, err := m.SetState(t0, "gpu", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	if m.UnplaceableCount() != 1 {
		t.Fatal("a task only a draining executor can run is not reported unplaceable")
	}
	if _, err := m.SetState(t0, "gpu", messages.ExecActive); err != nil {
		t.Fatal(err)
	}
	if m.UnplaceableCount() != 0 || m.Queued() != 1 {
		t.Fatalf("after undrain: aside %d, queued %d", m.UnplaceableCount(), m.Queued())
	}
	m.Evict(t0, "gpu", "test")
	if m.UnplaceableCount() != 1 || m.Queued() != 0 {
		t.Fatalf("after eviction: aside %d, queued %d", m.UnplaceableCount(), m.Queued())
	}
}

// Load-driven prefetch goes to the executor that would finish first: a
// busy executor with a long backlog does not prefetch a task an idle one
// could start at once.
func TestPrefetchPrefersEarliestFinish(t *testing.T) {
	cfg := testConfig()
	cfg.Prefetch = 1
	m := New(cfg)
	register(m, t0, "busy", 2, nil, nil)
	register(m, t0, "idle", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	if ids := grantedIDs(grantTo(pull(m, t0, "busy", messages.LoadReport{}), "busy")); len(ids) != 2 {
		t.Fatalf("busy granted %v", ids)
	}
	m.execs["busy"].backlog = float64(20 * time.Second) // its tasks are long
	m.Enqueue(t0, recs(normal, 3, 3))
	if ids := grantedIDs(grantTo(pull(m, t0, "busy", messages.LoadReport{}), "busy")); len(ids) != 0 {
		t.Fatalf("busy prefetched %v though idle would finish it first", ids)
	}
	if ids := grantedIDs(grantTo(pull(m, t0, "idle", messages.LoadReport{}), "idle")); len(ids) != 1 || ids[0] != 3 {
		t.Fatalf("idle granted %v, want [3]", ids)
	}
	// With no executor finishing sooner, the busy one prefetches as before.
	m.execs["idle"].backlog = float64(time.Minute)
	// (busy's empty pull above parked it: the enqueue serves it.)
	if ids := grantedIDs(grantTo(m.Enqueue(t0, recs(normal, 4, 4)), "busy")); len(ids) != 1 || ids[0] != 4 {
		t.Fatalf("busy granted %v, want its prefetch [4]", ids)
	}
}

func TestUnplaceableByType(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a-only", 1, []string{"a"}, map[string]string{"os": "linux"})
	r := rec(1, normal, 50)
	r.Type, r.Requirements = "b", map[string]string{"os": "=linux"}
	m.Enqueue(t0, []task.Record{r})
	u := m.Unplaceable()
	if len(u) != 1 || u[0].Type != "b" || !strings.Contains(m.Reason(1), `running "b" tasks`) {
		t.Fatalf("unplaceable %+v, reason %q", u, m.Reason(1))
	}
	register(m, t0, "any", 1, nil, map[string]string{"os": "linux"})
	if m.UnplaceableCount() != 0 {
		t.Fatal("still set aside after an executor of any type registered")
	}
}
