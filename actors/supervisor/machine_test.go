package supervisor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

var t0 = time.Unix(1_700_000_000, 0)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.HeartbeatTimeout = 9 * time.Second
	cfg.SleepPolicy = SleepOff
	cfg.MaxRestarts = 2
	return cfg
}

func attached(id string, at time.Time) messages.ExecutorStatus {
	return messages.ExecutorStatus{ID: id, Slots: 4, LastSeen: at.UnixMilli(), State: messages.ExecActive}
}

func idleExec(id string, seen, idleSince time.Time) messages.ExecutorStatus {
	e := attached(id, seen)
	e.IdleSince = idleSince.UnixMilli()
	return e
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(*Config){
		"Interval":         func(c *Config) { c.Interval = 0 },
		"HeartbeatTimeout": func(c *Config) { c.HeartbeatTimeout = -1 },
		"RestartBase":      func(c *Config) { c.RestartMax = c.RestartBase / 2 },
		"MaxRestarts":      func(c *Config) { c.MaxRestarts = -1 },
		"RestartWindow":    func(c *Config) { c.RestartWindow = 0 },
		"SleepPolicy":      func(c *Config) { c.SleepPolicy = "nap" },
		"SleepAfter":       func(c *Config) { c.SleepAfter = 0 },
		"LoadThreshold":    func(c *Config) { c.LoadThreshold = 2 },
		"MinActive":        func(c *Config) { c.MinActive = -1 },
		"MaxAlerts":        func(c *Config) { c.MaxAlerts = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}

// TestRestartBackoffThenEscalate: a launched process that keeps exiting is
// evicted at each exit, restarted after 500 ms, 1 s (doubling), and after
// MaxRestarts restarts within the window its next exit raises one alert
// and marks it failed.
func TestRestartBackoffThenEscalate(t *testing.T) {
	m := New(testConfig(), "n1")
	if fx := m.Launch(t0, "w1"); !slices.Equal(fx.Start, []string{"w1"}) {
		t.Fatalf("launch: %+v", fx)
	}
	now := t0
	for i, wait := range []time.Duration{500 * time.Millisecond, time.Second} {
		now = now.Add(10 * time.Millisecond)
		fx := m.Exited(now, "w1", "exit status 3")
		if len(fx.Evict) != 1 || fx.Evict[0].Executor != "w1" || len(fx.Alerts) != 0 {
			t.Fatalf("exit %d: %+v, want one eviction and no alert", i+1, fx)
		}
		if v := m.View(); len(v.Extra) != 1 || v.Extra[0].State != messages.ExecRestarting {
			t.Fatalf("exit %d: view %+v, want w1 restarting", i+1, v.Extra)
		}
		if fx := m.Observe(now.Add(wait-time.Millisecond), nil); len(fx.Start) != 0 {
			t.Fatalf("exit %d: restarted before its %v backoff", i+1, wait)
		}
		now = now.Add(wait)
		if fx := m.Observe(now, nil); !slices.Equal(fx.Start, []string{"w1"}) {
			t.Fatalf("exit %d: not restarted after %v: %+v", i+1, wait, fx)
		}
	}
	fx := m.Exited(now.Add(time.Millisecond), "w1", "exit status 3")
	if len(fx.Alerts) != 1 || fx.Alerts[0].Kind != KindRestartLimit || fx.Alerts[0].Failures != 3 || fx.Alerts[0].Node != "n1" {
		t.Fatalf("third failure: alerts %+v, want one restart_limit alert with 3 failures", fx.Alerts)
	}
	if fx := m.Observe(now.Add(time.Hour), nil); len(fx.Start) != 0 {
		t.Fatal("a failed process was restarted")
	}
	v := m.View()
	if len(v.Extra) != 1 || v.Extra[0].State != messages.ExecFailed || v.Extra[0].Restarts != 2 || len(v.Alerts) != 1 {
		t.Fatalf("view %+v", v)
	}
	if m.Counters.Restarts != 2 || m.Counters.Alerts != 1 {
		t.Fatalf("counters %+v", m.Counters)
	}
}

// TestFailuresOutsideTheWindowAreForgotten: failures spread wider than the
// window never escalate, and the backoff starts over.
func TestFailuresOutsideTheWindowAreForgotten(t *testing.T) {
	cfg := testConfig()
	cfg.RestartWindow = time.Minute
	m := New(cfg, "n1")
	m.Launch(t0, "w1")
	now := t0
	for i := range 10 {
		now = now.Add(2 * time.Minute)
		fx := m.Exited(now, "w1", "crash")
		if len(fx.Alerts) != 0 {
			t.Fatalf("failure %d a window apart escalated", i)
		}
		if fx := m.Observe(now.Add(cfg.RestartBase), nil); len(fx.Start) != 1 {
			t.Fatalf("failure %d: not restarted after the base backoff", i)
		}
	}
}

func TestBackoffCapped(t *testing.T) {
	m := New(DefaultConfig(), "n")
	for n, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 7: 30 * time.Second, 100: 30 * time.Second} {
		if got := m.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestHealthChecks(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct {
		name      string
		exec      messages.ExecutorStatus
		launched  bool
		wantEvict bool
		wantKill  bool
	}{
		{"fresh heartbeat", attached("a", t0), false, false, false},
		{"silent past timeout", attached("a", t0.Add(-cfg.HeartbeatTimeout-time.Millisecond)), false, true, false},
		{"silent exactly timeout", attached("a", t0.Add(-cfg.HeartbeatTimeout)), false, false, false},
		{"sleeping and silent", func() messages.ExecutorStatus {
			e := attached("a", t0.Add(-time.Hour))
			e.State = messages.ExecSleeping
			return e
		}(), false, false, false},
		{"own check failing", func() messages.ExecutorStatus {
			e := attached("a", t0)
			e.Unhealthy = "disk full"
			return e
		}(), false, true, false},
		{"launched and silent: killed, evicted at exit", attached("a", t0.Add(-time.Hour)), true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(cfg, "n")
			if tc.launched {
				m.Launch(t0.Add(-time.Hour), "a")
			}
			fx := m.Observe(t0, []messages.ExecutorStatus{tc.exec})
			if got := len(fx.Evict) == 1; got != tc.wantEvict {
				t.Errorf("evicted %v, want %v (%+v)", got, tc.wantEvict, fx)
			}
			if got := slices.Equal(fx.Kill, []string{"a"}); got != tc.wantKill {
				t.Errorf("killed %v, want %v (%+v)", got, tc.wantKill, fx)
			}
			if tc.wantKill {
				if fx := m.Observe(t0, []messages.ExecutorStatus{tc.exec}); len(fx.Kill) != 0 {
					t.Error("killed twice")
				}
				fx := m.Exited(t0, "a", "signal: killed")
				if len(fx.Evict) != 1 || !strings.Contains(fx.Evict[0].Reason, "no heartbeat") {
					t.Errorf("exit after kill: %+v, want an eviction giving the kill's reason", fx.Evict)
				}
			}
		})
	}
}

// TestExternalExecutorHealthEscalates: an executor the node did not launch
// is evicted at each failed check; past MaxRestarts in the window an alert
// marks it failed until it comes back healthy.
func TestExternalExecutorHealthEscalates(t *testing.T) {
	m := New(testConfig(), "n")
	bad := attached("x", t0)
	bad.Unhealthy = "gpu lost"
	var alerts []messages.Alert
	for i := range 3 {
		fx := m.Observe(t0.Add(time.Duration(i)*time.Second), []messages.ExecutorStatus{bad})
		if len(fx.Evict) != 1 {
			t.Fatalf("check %d: not evicted", i)
		}
		alerts = append(alerts, fx.Alerts...)
	}
	if len(alerts) != 1 || alerts[0].Kind != KindHealthLimit {
		t.Fatalf("alerts %+v, want one health_limit", alerts)
	}
	if v := m.View(); len(v.Extra) != 1 || v.Extra[0].State != messages.ExecFailed {
		t.Fatalf("view %+v, want x failed", v.Extra)
	}
	m.Observe(t0.Add(time.Minute), []messages.ExecutorStatus{attached("x", t0.Add(time.Minute))})
	if v := m.View(); len(v.Extra) != 0 {
		t.Fatalf("healthy again but still shown %+v", v.Extra)
	}
}

func TestLaunchedNeverRegisters(t *testing.T) {
	cfg := testConfig()
	m := New(cfg, "n")
	m.Launch(t0, "w")
	if fx := m.Observe(t0.Add(cfg.HeartbeatTimeout), nil); len(fx.Kill) != 0 {
		t.Fatal("killed before the timeout")
	}
	if fx := m.Observe(t0.Add(cfg.HeartbeatTimeout+time.Millisecond), nil); !slices.Equal(fx.Kill, []string{"w"}) {
		t.Fatalf("not killed: %+v", fx)
	}
	// Registered in time: running, never killed for it.
	m2 := New(cfg, "n")
	m2.Launch(t0, "w")
	m2.Observe(t0.Add(time.Second), []messages.ExecutorStatus{attached("w", t0.Add(time.Second))})
	if fx := m2.Observe(t0.Add(cfg.HeartbeatTimeout+time.Second), []messages.ExecutorStatus{attached("w", t0.Add(cfg.HeartbeatTimeout+time.Second))}); len(fx.Kill) != 0 {
		t.Fatalf("a registered process was killed: %+v", fx)
	}
}

func TestActorFailuresEscalate(t *testing.T) {
	m := New(testConfig(), "n")
	for i := range 2 {
		if ok, fx := m.ActorFailed(t0, "a", "boom"); !ok || len(fx.Alerts) != 0 {
			t.Fatalf("failure %d: restart %v, alerts %v", i, ok, fx.Alerts)
		}
	}
	if ok, fx := m.ActorFailed(t0, "a", "boom"); ok || len(fx.Alerts) != 1 || fx.Alerts[0].Kind != KindActorLimit {
		t.Fatalf("third failure: restart %v, alerts %+v", ok, fx.Alerts)
	}
}

func TestStoppingIgnoresExits(t *testing.T) {
	m := New(testConfig(), "n")
	m.Launch(t0, "w")
	m.Stop()
	if fx := m.Exited(t0, "w", "signal: terminated"); len(fx.Evict)+len(fx.Alerts) != 0 {
		t.Fatalf("exit while stopping: %+v", fx)
	}
}

func TestSleepPolicies(t *testing.T) {
	after := time.Minute
	for _, tc := range []struct {
		name      string
		policy    string
		minActive int
		execs     []messages.ExecutorStatus
		// at is when Observe runs; prior Observes at t0 seed the load policy.
		at   time.Time
		want []string
	}{
		{"time: idle long enough", SleepTime, 0, []messages.ExecutorStatus{idleExec("a", t0.Add(after), t0)}, t0.Add(after), []string{"a"}},
		{"time: not yet", SleepTime, 0, []messages.ExecutorStatus{idleExec("a", t0.Add(after), t0)}, t0.Add(after - time.Millisecond), nil},
		{"time: busy", SleepTime, 0, []messages.ExecutorStatus{func() messages.ExecutorStatus {
			e := attached("a", t0.Add(after))
			e.Leases = 1
			return e
		}()}, t0.Add(after), nil},
		{"time: MinActive keeps one awake", SleepTime, 1, []messages.ExecutorStatus{idleExec("a", t0.Add(after), t0), idleExec("b", t0.Add(after), t0)}, t0.Add(after), []string{"a"}},
		{"time: already sleeping", SleepTime, 0, []messages.ExecutorStatus{func() messages.ExecutorStatus {
			e := idleExec("a", t0.Add(after), t0)
			e.State = messages.ExecSleeping
			return e
		}()}, t0.Add(after), nil},
		{"time: a peer's stealer never sleeps", SleepTime, 0, []messages.ExecutorStatus{idleExec("steal/n2", t0.Add(after), t0)}, t0.Add(after), nil},
		{"off", SleepOff, 0, []messages.ExecutorStatus{idleExec("a", t0.Add(after), t0)}, t0.Add(after), nil},
		{"load: low for the window", SleepLoad, 0, []messages.ExecutorStatus{func() messages.ExecutorStatus {
			e := attached("a", t0.Add(after))
			e.Leases, e.Load.CPU = 0, 0.05
			return e
		}()}, t0.Add(after), []string{"a"}},
		{"load: leases count as load", SleepLoad, 0, []messages.ExecutorStatus{func() messages.ExecutorStatus {
			e := attached("a", t0.Add(after))
			e.Leases = 2 // 2 of 4 slots
			return e
		}()}, t0.Add(after), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SleepPolicy, cfg.SleepAfter, cfg.MinActive = tc.policy, after, tc.minActive
			cfg.HeartbeatTimeout = time.Hour
			m := New(cfg, "n")
			m.Observe(t0, tc.execs) // the load policy starts counting here
			fx := m.Observe(tc.at, tc.execs)
			if !slices.Equal(fx.Sleep, tc.want) {
				t.Fatalf("sleep %v, want %v", fx.Sleep, tc.want)
			}
		})
	}
}

func TestLoadPolicyResetsWhenLoaded(t *testing.T) {
	cfg := testConfig()
	cfg.SleepPolicy, cfg.SleepAfter, cfg.MinActive, cfg.HeartbeatTimeout = SleepLoad, time.Minute, 0, time.Hour
	m := New(cfg, "n")
	e := attached("a", t0)
	m.Observe(t0, []messages.ExecutorStatus{e})
	e.Load.CPU = 0.9
	m.Observe(t0.Add(30*time.Second), []messages.ExecutorStatus{e})
	e.Load.CPU = 0
	m.Observe(t0.Add(40*time.Second), []messages.ExecutorStatus{e})
	if fx := m.Observe(t0.Add(61*time.Second), []messages.ExecutorStatus{e}); len(fx.Sleep) != 0 {
		t.Fatal("slept though it was loaded within the window")
	}
	if fx := m.Observe(t0.Add(100*time.Second), []messages.ExecutorStatus{e}); len(fx.Sleep) != 1 {
		t.Fatal("did not sleep after a full quiet window")
	}
}

func TestMerge(t *testing.T) {
	m := New(testConfig(), "n")
	m.Launch(t0, "w1")
	m.Launch(t0, "w2")
	m.Exited(t0, "w2", "crash")
	got := m.View().Merge([]messages.ExecutorStatus{attached("w1", t0), attached("ext", t0)})
	if len(got) != 3 || got[0].ID != "ext" || got[0].Launched || !got[1].Launched || got[2].ID != "w2" || got[2].State != messages.ExecRestarting {
		t.Fatalf("merged %+v", got)
	}
}

func TestAlertsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRestarts, cfg.MaxAlerts = 0, 3
	m := New(cfg, "n")
	for i := range 5 {
		m.ActorFailed(t0.Add(time.Duration(i)), "a", "x")
	}
	if v := m.View(); len(v.Alerts) != 3 || v.Alerts[0].At != t0.UnixMilli() || m.Counters.Alerts != 5 {
		t.Fatalf("alerts %d (counter %d), want the last 3 of 5", len(v.Alerts), m.Counters.Alerts)
	}
}
