package cloud

import (
	"errors"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

func testCfg() Config {
	c := DefaultConfig()
	c.Provider = "process"
	c.Grace, c.Idle = 2*time.Second, 10*time.Second
	c.Capabilities = map[string]string{"os": "linux", "gpu": "a100"}
	return c
}

func gpuDemand(since time.Time) []task.Unplaceable {
	return []task.Unplaceable{{Shape: "gpu=a100", Requirements: map[string]string{"gpu": "=a100"}, Tasks: 3, Since: since.UnixNano()}}
}

func TestUnplaceableSpillLifecycle(t *testing.T) {
	m := New(testCfg(), "n1")
	// Within the grace period: nothing.
	if fx := m.Observe(t0.Add(time.Second), Observation{Unplaceable: gpuDemand(t0)}); len(fx.Provisions) != 0 {
		t.Fatalf("provisioned within the grace period: %+v", fx)
	}
	fx := m.Observe(t0.Add(3*time.Second), Observation{Unplaceable: gpuDemand(t0)})
	if len(fx.Provisions) != 1 {
		t.Fatalf("want one provision, got %+v", fx)
	}
	req := fx.Provisions[0].Req
	if req.ID != "n1-cloud-1" || req.Capabilities["gpu"] != "a100" || req.Capabilities[messages.CapCloud] != "true" || req.Requirements["gpu"] != "=a100" {
		t.Fatalf("request %+v", req)
	}
	// Still unplaceable while it starts: no second provision.
	if fx := m.Observe(t0.Add(4*time.Second), Observation{Unplaceable: gpuDemand(t0)}); len(fx.Provisions) != 0 {
		t.Fatalf("second provision while the first is starting: %+v", fx)
	}
	m.Provisioned(req.ID, "pid-1", nil)
	// It registers and runs the tasks.
	busy := []messages.ExecutorStatus{{ID: req.ID, Leases: 3}}
	m.Observe(t0.Add(5*time.Second), Observation{Executors: busy})
	if st := m.Status(); len(st) != 1 || st[0].State != "ready" {
		t.Fatalf("status %+v", st)
	}
	idle := []messages.ExecutorStatus{{ID: req.ID}}
	m.Observe(t0.Add(20*time.Second), Observation{Executors: busy})
	m.Observe(t0.Add(21*time.Second), Observation{Executors: idle})
	if fx := m.Observe(t0.Add(30*time.Second), Observation{Executors: idle}); len(fx.Releases) != 0 {
		t.Fatalf("released before the idle window: %+v", fx)
	}
	// Idle for the window: drained first, so no task is granted to it
	// while it goes; a task granted just before still finishes.
	fx = m.Observe(t0.Add(31*time.Second), Observation{Executors: idle})
	if len(fx.Drains) != 1 || fx.Drains[0] != req.ID || len(fx.Releases) != 0 {
		t.Fatalf("want a drain after 10 s idle, got %+v", fx)
	}
	late := []messages.ExecutorStatus{{ID: req.ID, Leases: 1, State: messages.ExecDraining}}
	if fx := m.Observe(t0.Add(32*time.Second), Observation{Executors: late}); len(fx.Releases) != 0 {
		t.Fatalf("released while a task granted before the drain runs: %+v", fx)
	}
	drained := []messages.ExecutorStatus{{ID: req.ID, State: messages.ExecDraining}}
	fx = m.Observe(t0.Add(33*time.Second), Observation{Executors: drained})
	if len(fx.Releases) != 1 || fx.Releases[0].Handle != "pid-1" {
		t.Fatalf("want a release once drained with nothing left, got %+v", fx)
	}
	m.Released(req.ID, nil)
	if m.Active() != 0 || m.Counters != (Counters{Provisioned: 1, Released: 1, ForUnplaceable: 1}) {
		t.Fatalf("active %d counters %+v", m.Active(), m.Counters)
	}
}

func TestRefusedWhenNotOffered(t *testing.T) {
	m := New(testCfg(), "n1")
	u := []task.Unplaceable{{Shape: "os=macos", Requirements: map[string]string{"os": "=macos"}, Tasks: 1, Since: t0.UnixNano()}}
	for i := range 3 {
		if fx := m.Observe(t0.Add(time.Duration(3+i)*time.Second), Observation{Unplaceable: u}); len(fx.Provisions) != 0 {
			t.Fatalf("provisioned for requirements cloud executors do not offer: %+v", fx)
		}
	}
	if m.Counters.Refused != 1 {
		t.Fatalf("refused %d, want 1 (once per shape)", m.Counters.Refused)
	}
	pinned := []task.Unplaceable{{Shape: "shoal.executor=x", Requirements: map[string]string{messages.ReqPin: "=x"}, Since: t0.UnixNano()}}
	if fx := m.Observe(t0.Add(10*time.Second), Observation{Unplaceable: pinned}); len(fx.Provisions) != 0 {
		t.Fatal("provisioned for a pinned task")
	}
}

func TestSaturationAndLimits(t *testing.T) {
	cfg := testCfg()
	cfg.MaxExecutors, cfg.MaxPerHour = 2, 3
	m := New(cfg, "n1")
	sat := Observation{Queued: 100, FreeSlots: 0}
	var ids []string
	now := t0
	for i := range 20 {
		now = t0.Add(time.Duration(i) * time.Second)
		fx := m.Observe(now, sat)
		for _, p := range fx.Provisions {
			ids = append(ids, p.Req.ID)
			m.Provisioned(p.Req.ID, p.Req.ID, nil)
			sat.Executors = append(sat.Executors, messages.ExecutorStatus{ID: p.Req.ID, Leases: 4})
		}
	}
	if len(ids) != 2 || m.Counters.Refused == 0 {
		t.Fatalf("provisioned %v (max 2 at once), refused %d", ids, m.Counters.Refused)
	}
	// Not saturated: below the threshold.
	m2 := New(cfg, "n2")
	for i := range 10 {
		if fx := m2.Observe(t0.Add(time.Duration(i)*time.Second), Observation{Queued: 7, FreeSlots: 1}); len(fx.Provisions) != 0 {
			t.Fatal("provisioned below the saturation threshold")
		}
	}
	// The hourly rate: release both, the third comes, the fourth is refused.
	for _, id := range ids {
		m.Released(id, nil)
	}
	sat.Executors = nil
	n := 0
	for i := range 60 {
		fx := m.Observe(now.Add(time.Duration(i)*time.Second), sat)
		for _, p := range fx.Provisions {
			n++
			m.Provisioned(p.Req.ID, "", nil)
			m.Released(p.Req.ID, nil) // gone at once: only the rate limits
		}
	}
	if n != 1 {
		t.Fatalf("%d provisions after the first two within the hour, want 1 (MaxPerHour 3)", n)
	}
	// An hour later the budget is back.
	fx := m.Observe(now.Add(2*time.Hour), sat)
	fx2 := m.Observe(now.Add(2*time.Hour+3*time.Second), sat)
	if len(fx.Provisions)+len(fx2.Provisions) != 1 {
		t.Fatalf("no provision after the hour passed: %+v %+v", fx, fx2)
	}
}

func TestProvisionFailures(t *testing.T) {
	m := New(testCfg(), "n1")
	fx := m.Observe(t0.Add(3*time.Second), Observation{Unplaceable: gpuDemand(t0)})
	m.Provisioned(fx.Provisions[0].Req.ID, "", errors.New("no capacity"))
	if m.Counters.Failed != 1 || m.Active() != 0 {
		t.Fatalf("counters %+v", m.Counters)
	}
	// Retried at the next observation; this one never registers.
	fx = m.Observe(t0.Add(4*time.Second), Observation{Unplaceable: gpuDemand(t0)})
	id := fx.Provisions[0].Req.ID
	m.Provisioned(id, "h", nil)
	fx = m.Observe(t0.Add(4*time.Second+testCfg().ProvisionTimeout+time.Second), Observation{})
	if len(fx.Releases) != 1 || fx.Releases[0].ID != id || m.Counters.Failed != 2 {
		t.Fatalf("timeout: %+v, counters %+v", fx, m.Counters)
	}
	// Released before the provider answered: released when it does.
	m3 := New(testCfg(), "n3")
	fx = m3.Observe(t0.Add(3*time.Second), Observation{Unplaceable: gpuDemand(t0)})
	id = fx.Provisions[0].Req.ID
	if fx := m3.Observe(t0.Add(3*time.Second+testCfg().ProvisionTimeout+time.Second), Observation{}); len(fx.Releases) != 0 {
		t.Fatal("released without a handle")
	}
	if fx := m3.Provisioned(id, "late", nil); len(fx.Releases) != 1 || fx.Releases[0].Handle != "late" {
		t.Fatalf("late answer not released: %+v", fx)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Provider = "aws"
	if c.Validate() == nil {
		t.Fatal("unknown provider accepted")
	}
}

// A cloud executor that registers but leaves the tasks unplaceable (it does
// not run their type) is not followed by more: no churn.
func TestNoChurnWhenCloudExecutorCannotHelp(t *testing.T) {
	m := New(testCfg(), "n1")
	d := gpuDemand(t0)
	d[0].Type = "render"
	fx := m.Observe(t0.Add(3*time.Second), Observation{Unplaceable: d})
	if len(fx.Provisions) != 1 || fx.Provisions[0].Req.Type != "render" {
		t.Fatalf("provisions %+v", fx.Provisions)
	}
	id := fx.Provisions[0].Req.ID
	m.Provisioned(id, "h", nil)
	reg := []messages.ExecutorStatus{{ID: id}}
	for i := range 5 {
		if fx := m.Observe(t0.Add(time.Duration(4+i)*time.Second), Observation{Unplaceable: d, Executors: reg}); len(fx.Provisions) != 0 {
			t.Fatalf("provisioned again for tasks the first cloud executor could not run: %+v", fx)
		}
	}
	if m.Counters.Refused != 1 {
		t.Fatalf("refused %d, want 1", m.Counters.Refused)
	}
	// Drained and released when idle; the demand goes away and comes
	// back: a fresh try.
	if fx := m.Observe(t0.Add(30*time.Second), Observation{Executors: reg}); len(fx.Drains) != 1 {
		t.Fatalf("idle cloud executor not drained: %+v", fx)
	}
	drained := []messages.ExecutorStatus{{ID: id, State: messages.ExecDraining}}
	if fx := m.Observe(t0.Add(30500*time.Millisecond), Observation{Executors: drained}); len(fx.Releases) != 1 {
		t.Fatalf("drained idle cloud executor not released: %+v", fx)
	}
	d2 := gpuDemand(t0.Add(30 * time.Second))
	d2[0].Type = "render"
	if fx := m.Observe(t0.Add(31*time.Second), Observation{Unplaceable: d2}); len(fx.Provisions) != 0 {
		t.Fatal("provisioned within the grace period")
	}
	if fx := m.Observe(t0.Add(33*time.Second), Observation{Unplaceable: d2}); len(fx.Provisions) != 1 {
		t.Fatalf("no fresh provision for new demand: %+v", fx)
	}
}

// Tasks whose type no registered executor runs (no requirements: the
// dispatcher sets them aside by type alone) spill like the others: one
// cloud executor for their type.
func TestTypeOnlyDemandSpills(t *testing.T) {
	m := New(testCfg(), "n1")
	d := []task.Unplaceable{{Type: "render", Tasks: 4, Since: t0.UnixNano()}}
	fx := m.Observe(t0.Add(3*time.Second), Observation{Unplaceable: d})
	if len(fx.Provisions) != 1 || fx.Provisions[0].Req.Type != "render" || len(fx.Provisions[0].Req.Requirements) != 0 {
		t.Fatalf("provisions %+v, want one for type render with no requirements", fx.Provisions)
	}
}
