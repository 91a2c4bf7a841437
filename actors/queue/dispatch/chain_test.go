package dispatch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// An unplaceable task's reason names, like Nomad's FilterNode metrics,
// which filter refused which executors: each executor under the first
// filter of the chain that refused it.
func TestUnplaceableReasonNamesTheRefusingFilters(t *testing.T) {
	m := New(testConfig())
	for _, id := range []string{"c", "a", "b"} {
		register(m, t0, id, 1, []string{"other"}, map[string]string{"os": "macos"})
	}
	register(m, t0, "d", 1, nil, map[string]string{"os": "linux"})
	register(m, t0, "e", 1, []string{"t"}, map[string]string{"os": "macos"})
	if _, err := m.SetState(t0, "e", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{"os": "=macos"}
	m.Enqueue(t0, []task.Record{r})
	if m.UnplaceableCount() != 1 {
		t.Fatalf("set aside %d, want 1", m.UnplaceableCount())
	}
	want := task.Refusals{
		{Filter: "type", Executors: []string{"a", "b", "c"}},
		{Filter: "capabilities", Executors: []string{"d"}},
		{Filter: "state", Executors: []string{"e"}},
	}
	u := m.Unplaceable()
	if len(u) != 1 || !reflect.DeepEqual(u[0].Refused, want) {
		t.Fatalf("refused = %+v, want %+v", u[0].Refused, want)
	}
	const text = "type refused 3 (a, b, c); capabilities refused 1 (d); state refused 1 (e)"
	if why := m.Reason(1); !strings.Contains(why, text) || !strings.Contains(why, `"t" tasks satisfies os=macos`) || u[0].Reason != why {
		t.Fatalf("reason = %q, status reason %q; want it to contain %q", why, u[0].Reason, text)
	}

	// A new executor that cannot run it either is counted at once.
	register(m, t0, "f", 1, nil, map[string]string{"os": "windows"})
	if why := m.Reason(1); !strings.Contains(why, "capabilities refused 2 (d, f)") {
		t.Fatalf("after f registered: reason = %q", why)
	}
	// One leaves: no longer counted.
	m.Evict(t0, "d", "test")
	if why := m.Reason(1); !strings.Contains(why, "capabilities refused 1 (f)") {
		t.Fatalf("after d left: reason = %q", why)
	}
	// e stops draining: the task is placed, and nothing is wrong.
	if _, err := m.SetState(t0, "e", messages.ExecActive); err != nil {
		t.Fatal(err)
	}
	if m.UnplaceableCount() != 0 || m.Reason(1) != "" || m.Queued() != 1 {
		t.Fatalf("after e undrained: aside %d, queued %d, reason %q", m.UnplaceableCount(), m.Queued(), m.Reason(1))
	}
}

func TestUnplaceableReasonPinAndNoExecutor(t *testing.T) {
	m := New(testConfig())
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{"gpu": "=a100"}
	m.Enqueue(t0, []task.Record{r})
	if why := m.Reason(1); !strings.Contains(why, "no executor registered") {
		t.Fatalf("no executors: reason = %q", why)
	}
	var ids []string
	for _, id := range []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"} {
		register(m, t0, id, 1, nil, nil)
		ids = append(ids, id)
	}
	p := rec(2, normal, 50)
	p.Requirements = map[string]string{messages.ReqPin: "=gone"}
	m.Enqueue(t0, []task.Record{p})
	if why := m.Reason(2); !strings.Contains(why, "pin refused 7 (x1, x2, x3, x4, x5, +2 more)") {
		t.Fatalf("pinned to an unknown executor: reason = %q", why)
	}
	if why := m.Reason(1); !strings.Contains(why, "capabilities refused 7 (") {
		t.Fatalf("gpu task: reason = %q", why)
	}
	for _, u := range m.Unplaceable() {
		if len(u.Refused) != 1 || !reflect.DeepEqual(u.Refused[0].Executors, ids) {
			t.Fatalf("%s: refused %+v, want all of %v", u.Shape, u.Refused, ids)
		}
	}
}

// maintenance refuses the executors it names.
type maintenance map[string]bool

func (maintenance) Name() string                                { return "maintenance" }
func (f maintenance) Feasible(_ *task.Record, ex Executor) bool { return !f[ex.ID()] }

// fixedQuota grants n tasks per grant, whatever the load.
type fixedQuota int

func (fixedQuota) Name() string { return "fixed" }
func (q fixedQuota) Open(ex Executor) Allowance {
	return Allowance{Free: int(q), Limit: int(q)}
}
func (fixedQuota) Take(a Allowance, _ Executor, _ float64) (Allowance, bool) { return a, false }

// The chain is configuration: a filter added to the defaults keeps work
// off an executor and names itself in reasons; a quota replaces the load
// rule.
func TestConfiguredFilterAndQuota(t *testing.T) {
	cfg := testConfig()
	cfg.Filters = append(DefaultFilters(), maintenance{"b": true})
	cfg.Quota = fixedQuota(3)
	m := New(cfg)
	register(m, t0, "a", 1, nil, map[string]string{"os": "linux"})
	register(m, t0, "b", 8, nil, map[string]string{"os": "linux"})
	m.Enqueue(t0, recs(normal, 1, 5))
	if ids := grantedIDs(grantTo(pull(m, t0, "b", messages.LoadReport{}), "b")); len(ids) != 0 {
		t.Fatalf("b (in maintenance) granted %v", ids)
	}
	if ids := grantedIDs(grantTo(pull(m, t0, "a", messages.LoadReport{}), "a")); len(ids) != 3 {
		t.Fatalf("a granted %v, want 3 (the fixed quota, past its one slot)", ids)
	}
	r := rec(9, normal, 50)
	r.Requirements = map[string]string{"os": "=macos"}
	m.Enqueue(t0, []task.Record{r})
	if why := m.Reason(9); !strings.Contains(why, "capabilities refused 2 (a, b)") {
		t.Fatalf("reason = %q", why)
	}
	m.Evict(t0, "a", "test")
	w := rec(10, normal, 50)
	w.Requirements = map[string]string{"os": "=linux"}
	m.Enqueue(t0, []task.Record{w})
	if why := m.Reason(10); !strings.Contains(why, "maintenance refused 1 (b)") {
		t.Fatalf("reason = %q", why)
	}
}

func TestValidateNamesNilChainStage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Filters = []Filter{TypeFilter{}, nil}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Filters[1]") {
		t.Fatalf("Validate = %v, want it to name Filters[1]", err)
	}
	cfg = DefaultConfig()
	cfg.Rankers = []Ranker{nil}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Rankers[0]") {
		t.Fatalf("Validate = %v, want it to name Rankers[0]", err)
	}
}
