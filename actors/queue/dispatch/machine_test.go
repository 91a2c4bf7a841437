package dispatch

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

const (
	high   = messages.ClassHigh
	normal = messages.ClassNormal
	low    = messages.ClassLow
)

func rec(id uint64, c messages.Class, prio int32) task.Record {
	return task.Record{ID: id, Class: c, Priority: prio, Type: "t", Payload: []byte{byte(id)},
		Digest: task.Digest{byte(id), byte(id >> 8)}, MaxAttempts: 3}
}

func recs(c messages.Class, from, to uint64) []task.Record {
	var out []task.Record
	for id := from; id <= to; id++ {
		out = append(out, rec(id, c, 50))
	}
	return out
}

// testConfig: no prefetch unless a test asks, long aging so only tests of
// aging see it.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Prefetch, cfg.MinPrefetch, cfg.BufferTime = 0, 0, 0
	cfg.AgingAfter = time.Hour
	return cfg
}

func register(m *Machine, now time.Time, id string, slots int32, types []string, caps map[string]string) {
	m.Register(now, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: id, Slots: slots, Types: types, Capabilities: caps})
}

func pull(m *Machine, now time.Time, id string, load messages.LoadReport, results ...messages.Result) Effects {
	return m.Pull(now, &messages.Pull{ExecutorID: id, Load: load, Results: results})
}

func grantTo(fx Effects, id string) *messages.Grant {
	for i := range fx.Grants {
		if fx.Grants[i].Executor == id {
			return &fx.Grants[i].Grant
		}
	}
	return nil
}

func taskIDs(g *messages.Grant) []uint64 {
	if g == nil {
		return nil
	}
	var out []uint64
	for _, t := range g.Tasks {
		out = append(out, t.ID)
	}
	return out
}

func ok(id uint64, attempt int32) messages.Result {
	return messages.Result{TaskID: id, Attempt: attempt, OK: true, Output: []byte("out")}
}

func failed(id uint64, attempt int32) messages.Result {
	return messages.Result{TaskID: id, Attempt: attempt, Error: "boom"}
}

func noLoad() messages.LoadReport { return messages.LoadReport{} }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"Capacity":   func(c *Config) { c.Capacity[2] = 0 },
		"Weights":    func(c *Config) { c.Weights[1] = 0 },
		"AgingAfter": func(c *Config) { c.AgingAfter = 0 },
		"LeaseTTL":   func(c *Config) { c.LeaseTTL = 0 },
		"MaxLoad":    func(c *Config) { c.MaxLoad = 1.5 },
		"Prefetch":   func(c *Config) { c.Prefetch = -1 },
		"MaxGrant":   func(c *Config) { c.MaxGrant = 0 },
		"RetryBase":  func(c *Config) { c.RetryMax = c.RetryBase / 2 },
		"ScanLimit":  func(c *Config) { c.ScanLimit = 0 },
	}
	for name, mut := range bad {
		cfg := DefaultConfig()
		mut(&cfg)
		if cfg.Validate() == nil {
			t.Errorf("%s: bad config accepted", name)
		}
	}
}

func TestInterleave(t *testing.T) {
	got := interleave([messages.NumClasses]int{6, 3, 1})
	want := []messages.Class{high, normal, low, high, normal, high, normal, high, high, high}
	if !slices.Equal(got, want) {
		t.Fatalf("interleave(6,3,1) = %v, want %v", got, want)
	}
}

func TestRegisterReply(t *testing.T) {
	m := New(testConfig())
	fx := m.Register(t0, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: "e", Slots: 0})
	if len(fx.Replies) != 1 || fx.Replies[0].Executor != "e" {
		t.Fatalf("replies %+v", fx.Replies)
	}
	r, isReg := fx.Replies[0].Msg.(*messages.Registered)
	if !isReg || r.LeaseTTLMillis != 15000 || r.HeartbeatMillis != 3000 || r.Err != nil {
		t.Fatalf("reply %+v", fx.Replies[0].Msg)
	}
	if !m.Known("e") {
		t.Fatal("not known after Register")
	}
	if ex := m.Executors(); len(ex) != 1 || ex[0].Slots != 1 {
		t.Fatalf("slots 0 registered as %+v, want 1", ex)
	}
}

func TestPriorityOrderWithinClass(t *testing.T) {
	m := New(testConfig())
	m.Enqueue(t0, []task.Record{rec(1, normal, 40), rec(2, normal, 60), rec(3, normal, 50), rec(4, normal, 60), rec(5, normal, 69)})
	register(m, t0, "e", 10, nil, nil)
	g := grantTo(pull(m, t0, "e", noLoad()), "e")
	if got := taskIDs(g); !slices.Equal(got, []uint64{5, 2, 4, 3, 1}) {
		t.Fatalf("order %v, want [5 2 4 3 1]: priority, then id", got)
	}
	for _, tk := range g.Tasks {
		if tk.Attempt != 1 || tk.Type != "t" || len(tk.Payload) != 1 || tk.Payload[0] != byte(tk.ID) {
			t.Errorf("granted task %+v", tk)
		}
	}
	if g.LeaseTTLMillis != 15000 {
		t.Errorf("LeaseTTLMillis %d", g.LeaseTTLMillis)
	}
}

// With every class full, grants follow the 6:3:1 schedule exactly.
func TestWeightedSchedule(t *testing.T) {
	m := New(testConfig())
	m.Enqueue(t0, recs(high, 1, 1000))
	m.Enqueue(t0, recs(normal, 1001, 2000))
	m.Enqueue(t0, recs(low, 2001, 3000))
	register(m, t0, "e", 10, nil, nil)
	var count [messages.NumClasses]int
	var results []messages.Result
	class := func(id uint64) messages.Class { return messages.Class((id - 1) / 1000) }
	for range 100 {
		g := grantTo(pull(m, t0, "e", noLoad(), results...), "e")
		if len(g.Tasks) != 10 {
			t.Fatalf("grant of %d tasks, want 10", len(g.Tasks))
		}
		results = results[:0]
		for _, tk := range g.Tasks {
			count[class(tk.ID)]++
			results = append(results, ok(tk.ID, tk.Attempt))
		}
	}
	if count != [messages.NumClasses]int{600, 300, 100} {
		t.Fatalf("grants per class %v, want [600 300 100]", count)
	}
	// An empty class gives its turns to the others.
	m = New(testConfig())
	m.Enqueue(t0, recs(high, 1, 100))
	m.Enqueue(t0, recs(low, 2001, 2100))
	register(m, t0, "e", 100, nil, nil)
	count = [messages.NumClasses]int{}
	for _, tk := range grantTo(pull(m, t0, "e", noLoad()), "e").Tasks {
		count[class(tk.ID)]++
	}
	if count[high] < 80 || count[low] < 10 || count[high]+count[low] != 100 {
		t.Fatalf("high and low only: %v", count)
	}
}

func TestAgingPromotesOldTask(t *testing.T) {
	cfg := testConfig()
	cfg.AgingAfter = 2 * time.Second
	newM := func(lowAt time.Time) *Machine {
		m := New(cfg)
		m.Enqueue(lowAt, []task.Record{rec(1, low, 0)})
		m.Enqueue(t0.Add(time.Second), []task.Record{rec(2, normal, 50)})
		m.Enqueue(t0.Add(2500*time.Millisecond), recs(high, 10, 30))
		register(m, t0, "e", 1, nil, nil)
		return m
	}
	// Before anything ages, the schedule starts with high.
	m := newM(t0.Add(time.Second))
	if got := taskIDs(grantTo(pull(m, t0.Add(2500*time.Millisecond), "e", noLoad()), "e")); !slices.Equal(got, []uint64{10}) {
		t.Fatalf("no aging: granted %v, want [10]", got)
	}
	// Low's head has waited over 2 s: it goes first, then the normal one that aged too.
	m = newM(t0)
	now := t0.Add(3500 * time.Millisecond)
	got := taskIDs(grantTo(pull(m, now, "e", noLoad()), "e"))
	if !slices.Equal(got, []uint64{1}) {
		t.Fatalf("aged low: granted %v, want [1]", got)
	}
	got = taskIDs(grantTo(pull(m, now, "e", noLoad(), ok(1, 1)), "e"))
	if !slices.Equal(got, []uint64{2}) {
		t.Fatalf("aged normal: granted %v, want [2]", got)
	}
	got = taskIDs(grantTo(pull(m, now, "e", noLoad(), ok(2, 1)), "e"))
	if !slices.Equal(got, []uint64{10}) {
		t.Fatalf("nothing aged: granted %v, want [10]", got)
	}
}

func TestQuotaFreeSlotsAlwaysGranted(t *testing.T) {
	cfg := testConfig()
	cfg.Prefetch = 1
	m := New(cfg)
	m.Enqueue(t0, recs(normal, 1, 20))
	register(m, t0, "e", 4, nil, nil)
	g := grantTo(pull(m, t0, "e", messages.LoadReport{CPU: 1, Mem: 1, IO: 1}), "e")
	if len(g.Tasks) != 4 {
		t.Fatalf("fully loaded executor got %d tasks, want its 4 free slots", len(g.Tasks))
	}
	// Holding 3 of 4 slots, still loaded: one more.
	m = New(cfg)
	m.Enqueue(t0, recs(normal, 1, 20))
	register(m, t0, "e", 4, nil, nil)
	pull(m, t0, "e", messages.LoadReport{CPU: 1})                             // 4 leases
	g = grantTo(pull(m, t0, "e", messages.LoadReport{CPU: 1}, ok(1, 1)), "e") // one finished
	if got := taskIDs(g); len(got) != 1 {
		t.Fatalf("after one result: %v, want one task", got)
	}
}

func TestQuotaMinPrefetchIgnoresLoad(t *testing.T) {
	cfg := testConfig()
	cfg.Prefetch, cfg.MinPrefetch = 2, 1
	m := New(cfg)
	m.Enqueue(t0, recs(normal, 1, 50))
	register(m, t0, "e", 4, nil, nil)
	if g := grantTo(pull(m, t0, "e", messages.LoadReport{CPU: 1}), "e"); len(g.Tasks) != 8 {
		t.Fatalf("fully loaded executor got %d tasks, want 4 slots + 4 minimum prefetch", len(g.Tasks))
	}
	bad := DefaultConfig()
	bad.Prefetch, bad.MinPrefetch = 1, 2
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "MinPrefetch") {
		t.Fatalf("MinPrefetch above Prefetch: %v", err)
	}
}

// Short tasks get a buffer covering BufferTime of their run time, capped.
func TestQuotaBufferTime(t *testing.T) {
	cfg := testConfig()
	cfg.BufferTime, cfg.MaxBuffer = 10*time.Millisecond, 4
	m := New(cfg)
	m.Enqueue(t0, recs(normal, 1, 100))
	register(m, t0, "e", 2, nil, nil)
	g := grantTo(pull(m, t0, "e", messages.LoadReport{CPU: 1}), "e")
	if len(g.Tasks) != 2 {
		t.Fatalf("before any run time is known: %d tasks, want the 2 free slots", len(g.Tasks))
	}
	// 5 ms tasks: 10 ms covers 2 per slot → 2 slots + 4 waiting.
	g = grantTo(pull(m, t0, "e", messages.LoadReport{CPU: 1},
		messages.Result{TaskID: g.Tasks[0].ID, Attempt: 1, OK: true, RunNanos: 5e6},
		messages.Result{TaskID: g.Tasks[1].ID, Attempt: 1, OK: true, RunNanos: 5e6}), "e")
	if len(g.Tasks) != 6 {
		t.Fatalf("5 ms tasks: %d tasks, want 6", len(g.Tasks))
	}
	// Very short tasks: capped at MaxBuffer per slot → 2 + 8 held at most.
	m2 := New(cfg)
	m2.Enqueue(t0, recs(normal, 1, 100))
	register(m2, t0, "e", 2, nil, nil)
	g = grantTo(pull(m2, t0, "e", messages.LoadReport{CPU: 1}), "e")
	g = grantTo(pull(m2, t0, "e", messages.LoadReport{CPU: 1},
		messages.Result{TaskID: g.Tasks[0].ID, Attempt: 1, OK: true, RunNanos: 1000},
		messages.Result{TaskID: g.Tasks[1].ID, Attempt: 1, OK: true, RunNanos: 1000}), "e")
	if len(g.Tasks) != 10 {
		t.Fatalf("1 µs tasks: %d tasks, want 2 slots + 8 (MaxBuffer 4 × 2 slots)", len(g.Tasks))
	}
}

func TestQuotaPrefetchByLoad(t *testing.T) {
	cases := []struct {
		name     string
		prefetch float64
		maxGrant int
		load     messages.LoadReport
		want     int
	}{
		// Unknown per-task load costs 1/slots = 0.25. Budget 0.9 − 0.5 = 0.4: one extra.
		{"half loaded", 1, 512, messages.LoadReport{CPU: 0.5}, 5},
		// The max of cpu, mem and io counts.
		{"io bound", 1, 512, messages.LoadReport{CPU: 0.1, Mem: 0.2, IO: 0.5}, 5},
		{"mem bound", 1, 512, messages.LoadReport{Mem: 0.7}, 4},
		{"over max load", 1, 512, messages.LoadReport{CPU: 0.95}, 4},
		// Idle: budget 0.9 → three extra, capped by Prefetch × slots.
		{"idle", 1, 512, messages.LoadReport{}, 7},
		{"idle, prefetch 0.5", 0.5, 512, messages.LoadReport{}, 6},
		{"idle, prefetch 0", 0, 512, messages.LoadReport{}, 4},
		{"max grant", 1, 3, messages.LoadReport{}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Prefetch, cfg.MaxGrant = c.prefetch, c.maxGrant
			m := New(cfg)
			m.Enqueue(t0, recs(normal, 1, 50))
			register(m, t0, "e", 4, nil, nil)
			g := grantTo(pull(m, t0, "e", c.load), "e")
			if len(g.Tasks) != c.want {
				t.Fatalf("granted %d, want %d", len(g.Tasks), c.want)
			}
			if m.QueueLen(normal) != 50-c.want {
				t.Fatalf("queue %d after granting %d of 50", m.QueueLen(normal), c.want)
			}
		})
	}
}

func TestQuotaLearnsPerTaskLoad(t *testing.T) {
	cfg := testConfig()
	cfg.Prefetch = 10
	m := New(cfg)
	register(m, t0, "e", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	g := grantTo(pull(m, t0, "e", noLoad()), "e")
	if len(g.Tasks) != 2 {
		t.Fatalf("granted %v", taskIDs(g))
	}
	if m.PerTaskLoad("t") != 0 {
		t.Fatalf("learned before any result")
	}
	// Two in flight at 0.4 load: 0.2 per task.
	pull(m, t0, "e", messages.LoadReport{CPU: 0.4, InFlight: 2}, ok(1, 1))
	if got := m.PerTaskLoad("t"); got < 0.1999 || got > 0.2001 {
		t.Fatalf("per-task load %v, want 0.2", got)
	}
	// The executor parked with 1 free slot at load 0.4; new work goes to it:
	// the free slot, then the budget 0.9 − 0.4 = 0.5 buys two more at 0.2 each.
	g = grantTo(m.Enqueue(t0, recs(normal, 10, 30)), "e")
	if g == nil || len(g.Tasks) != 3 {
		t.Fatalf("granted %d, want 1 free + 2 prefetched", len(g.Tasks))
	}
	// EWMA: a second sample of 0.6 moves the estimate by a fifth.
	pull(m, t0, "e", messages.LoadReport{CPU: 0.6, InFlight: 1}, ok(2, 1))
	if got := m.PerTaskLoad("t"); got < 0.2799 || got > 0.2801 {
		t.Fatalf("per-task load %v, want 0.2×0.6 + 0.8×0.2 = 0.28", got)
	}
}

func TestParkAndServeOnEnqueue(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 2, nil, nil)
	register(m, t0, "b", 1, nil, nil)
	if fx := pull(m, t0, "a", noLoad()); len(fx.Grants) != 0 {
		t.Fatalf("empty queue granted %+v", fx.Grants)
	}
	if fx := pull(m, t0, "b", noLoad()); len(fx.Grants) != 0 {
		t.Fatalf("empty queue granted %+v", fx.Grants)
	}
	fx := m.Enqueue(t0, recs(normal, 1, 2))
	if got := taskIDs(grantTo(fx, "a")); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("parked a got %v", got)
	}
	if grantTo(fx, "b") != nil {
		t.Fatalf("b got work the queue did not have")
	}
	fx = m.Enqueue(t0, recs(normal, 3, 3))
	if got := taskIDs(grantTo(fx, "b")); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("still parked b got %v", got)
	}
	// Neither is parked now: new work waits for a pull.
	if fx = m.Enqueue(t0, recs(normal, 4, 4)); len(fx.Grants) != 0 {
		t.Fatalf("granted to executors without a pull out: %+v", fx.Grants)
	}
	if m.Queued() != 1 {
		t.Fatalf("queued %d", m.Queued())
	}
}

// A parked executor that was full gets work when a heartbeat reports a result.
func TestHeartbeatServesParkedExecutor(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	if got := taskIDs(grantTo(pull(m, t0, "e", noLoad()), "e")); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("granted %v", got)
	}
	if fx := pull(m, t0, "e", noLoad()); len(fx.Grants) != 0 {
		t.Fatalf("full executor granted %+v", fx.Grants)
	}
	fx := m.Heartbeat(t0, &messages.Heartbeat{ExecutorID: "e", Results: []messages.Result{ok(1, 1)}})
	if got := taskIDs(grantTo(fx, "e")); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("heartbeat freed a slot; granted %v, want [2]", got)
	}
	if len(fx.Finished) != 1 || fx.Finished[0].ID != 1 {
		t.Fatalf("finished %+v", fx.Finished)
	}
}

func TestDoneResult(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(7, high, 80)})
	pull(m, t0, "e", noLoad())
	if m.State(7) != messages.StateLeased || m.Leases() != 1 {
		t.Fatalf("state %v", m.State(7))
	}
	at := t0.Add(time.Second)
	fx := pull(m, at, "e", noLoad(), messages.Result{TaskID: 7, Attempt: 1, OK: true, Output: []byte("result")})
	want := task.Result{ID: 7, Class: high, Digest: rec(7, high, 80).Digest, State: messages.StateDone,
		Output: []byte("result"), Attempts: 1, FinishedAt: at.UnixNano()}
	if len(fx.Finished) != 1 {
		t.Fatalf("finished %+v", fx.Finished)
	}
	got := fx.Finished[0]
	if got.ID != want.ID || got.Class != want.Class || got.Digest != want.Digest || got.State != want.State ||
		string(got.Output) != "result" || got.Attempts != 1 || got.FinishedAt != want.FinishedAt {
		t.Fatalf("finished %+v, want %+v", got, want)
	}
	if m.State(7) != messages.StateUnknown || m.Leases() != 0 || m.Counters.Completed != 1 {
		t.Fatalf("after done: state %v leases %d counters %+v", m.State(7), m.Leases(), m.Counters)
	}
}

func TestFailureRetriesWithBackoff(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "e", noLoad())
	fx := pull(m, t0, "e", noLoad(), failed(1, 1))
	if len(fx.Attempts) != 1 || fx.Attempts[0] != (store.AttemptUpdate{ID: 1, Attempts: 1}) {
		t.Fatalf("attempts %+v", fx.Attempts)
	}
	if len(fx.Finished) != 0 || len(fx.Grants) != 0 {
		t.Fatalf("failed attempt: %+v", fx)
	}
	if m.State(1) != messages.StateFailed {
		t.Fatalf("state %v, want failed", m.State(1))
	}
	backoff := m.Backoff(1)
	if fx = m.Tick(t0.Add(backoff - 1)); len(fx.Grants) != 0 || m.State(1) != messages.StateFailed {
		t.Fatalf("retry released before its backoff")
	}
	// The executor is parked (its pull got nothing): the released retry goes to it.
	fx = m.Tick(t0.Add(backoff))
	g := grantTo(fx, "e")
	if g == nil || len(g.Tasks) != 1 || g.Tasks[0].ID != 1 || g.Tasks[0].Attempt != 2 {
		t.Fatalf("retry grant %+v", g)
	}
	// A retry holds no queue place: no credit when it is granted again.
	if fx.Credit != ([messages.NumClasses]int{}) {
		t.Fatalf("credit %v for a retry", fx.Credit)
	}
	if m.Counters.Failed != 1 || m.Counters.Retried != 1 {
		t.Fatalf("counters %+v", m.Counters)
	}
}

func TestBackoff(t *testing.T) {
	cfg := testConfig()
	cfg.RetryBase, cfg.RetryMax = 100*time.Millisecond, time.Second
	m := New(cfg)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := m.Backoff(int32(i + 1)); got != w*time.Millisecond {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := m.Backoff(1000); got != time.Second {
		t.Errorf("Backoff(1000) = %v", got)
	}
}

func TestPermanentFailureIsDead(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "e", noLoad())
	r := failed(1, 1)
	r.Permanent = true
	fx := pull(m, t0, "e", noLoad(), r)
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead || fx.Finished[0].Error != "boom" || fx.Finished[0].Attempts != 1 {
		t.Fatalf("finished %+v", fx.Finished)
	}
	if len(fx.Attempts) != 0 || m.State(1) != messages.StateUnknown || m.Counters.Dead != 1 {
		t.Fatalf("permanent failure retried: %+v, state %v", fx.Attempts, m.State(1))
	}
}

func TestMaxAttemptsIsDead(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)}) // MaxAttempts 3
	now := t0
	pull(m, now, "e", noLoad())
	for attempt := int32(1); attempt <= 3; attempt++ {
		fx := pull(m, now, "e", noLoad(), failed(1, attempt))
		if attempt < 3 {
			if len(fx.Finished) != 0 || len(fx.Attempts) != 1 || fx.Attempts[0].Attempts != attempt {
				t.Fatalf("attempt %d: %+v", attempt, fx)
			}
			now = now.Add(m.Backoff(attempt))
			g := grantTo(m.Tick(now), "e")
			if g == nil || g.Tasks[0].Attempt != attempt+1 {
				t.Fatalf("attempt %d: retry grant %+v", attempt, g)
			}
			continue
		}
		if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead || fx.Finished[0].Attempts != 3 {
			t.Fatalf("last attempt: %+v", fx)
		}
	}
}

// A recovered task keeps its failed attempts: it is granted as the next one.
func TestEnqueueKeepsAttempts(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	r := rec(1, normal, 50)
	r.Attempts = 2
	m.Enqueue(t0, []task.Record{r})
	g := grantTo(pull(m, t0, "e", noLoad()), "e")
	if g.Tasks[0].Attempt != 3 {
		t.Fatalf("attempt %d, want 3", g.Tasks[0].Attempt)
	}
	if fx := pull(m, t0, "e", noLoad(), failed(1, 3)); len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead {
		t.Fatalf("third attempt of 3 failed: %+v", fx)
	}
}

func TestStaleResultsIgnored(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	register(m, t0, "b", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "a", noLoad())
	for name, fx := range map[string]Effects{
		"wrong attempt":  pull(m, t0, "a", noLoad(), ok(1, 2)),
		"wrong executor": pull(m, t0, "b", noLoad(), ok(1, 1)),
		"unknown task":   pull(m, t0, "a", noLoad(), ok(99, 1)),
	} {
		if len(fx.Finished) != 0 || len(fx.Attempts) != 0 {
			t.Errorf("%s: %+v", name, fx)
		}
	}
	if m.Counters.Stale != 3 || m.State(1) != messages.StateLeased {
		t.Fatalf("stale %d, state %v", m.Counters.Stale, m.State(1))
	}
	if fx := pull(m, t0, "a", noLoad(), ok(1, 1)); len(fx.Finished) != 1 {
		t.Fatalf("the real result: %+v", fx)
	}
	// A second report of the same result is stale.
	if fx := pull(m, t0, "a", noLoad(), ok(1, 1)); len(fx.Finished) != 0 || m.Counters.Stale != 4 {
		t.Fatalf("duplicate report: %+v, stale %d", fx, m.Counters.Stale)
	}
}

func TestLeaseExpiry(t *testing.T) {
	cfg := testConfig()
	m := New(cfg)
	register(m, t0, "a", 1, nil, nil)
	register(m, t0, "b", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "a", noLoad())
	// b keeps itself alive and waits for work.
	pull(m, t0, "b", noLoad())
	// Any message renews: a heartbeat at +10 s keeps a alive at +20 s.
	m.Heartbeat(t0.Add(10*time.Second), &messages.Heartbeat{ExecutorID: "a"})
	m.Heartbeat(t0.Add(10*time.Second), &messages.Heartbeat{ExecutorID: "b"})
	if fx := m.Tick(t0.Add(10*time.Second + cfg.LeaseTTL)); len(fx.Attempts) != 0 || !m.Known("a") {
		t.Fatalf("lease expired at exactly LeaseTTL: %+v", fx)
	}
	m.Heartbeat(t0.Add(20*time.Second), &messages.Heartbeat{ExecutorID: "b"})
	expiry := t0.Add(10*time.Second + cfg.LeaseTTL + 1)
	fx := m.Tick(expiry)
	if len(fx.Attempts) != 1 || fx.Attempts[0] != (store.AttemptUpdate{ID: 1, Attempts: 1}) {
		t.Fatalf("expiry attempts %+v, want attempt 1 counted", fx.Attempts)
	}
	if m.Known("a") || !m.Known("b") {
		t.Fatalf("known a=%v b=%v", m.Known("a"), m.Known("b"))
	}
	if m.Counters.Expired != 1 || m.State(1) != messages.StateFailed {
		t.Fatalf("expired %d, state %v", m.Counters.Expired, m.State(1))
	}
	// The retry goes to the parked, live executor.
	g := grantTo(m.Tick(expiry.Add(m.Backoff(1))), "b")
	if g == nil || g.Tasks[0].ID != 1 || g.Tasks[0].Attempt != 2 {
		t.Fatalf("requeued task grant %+v", g)
	}
	// The forgotten executor's late result is fenced, and it is told to register again.
	fx = pull(m, expiry.Add(time.Hour), "a", noLoad(), ok(1, 1))
	if len(fx.Finished) != 0 || len(fx.Replies) != 1 || fx.Replies[0].Executor != "a" {
		t.Fatalf("late pull of a forgotten executor: %+v", fx)
	}
	if gr, isGrant := fx.Replies[0].Msg.(*messages.Grant); !isGrant || !errors.Is(gr.Err, messages.ErrUnknownExecutor) {
		t.Fatalf("reply %+v, want a Grant with CodeUnknownExecutor", fx.Replies[0].Msg)
	}
	if m.Counters.Stale != 1 {
		t.Fatalf("stale %d", m.Counters.Stale)
	}
}

func TestLeaseExpiryOnLastAttemptIsDead(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "a", 1, nil, nil)
	r := rec(1, normal, 50)
	r.MaxAttempts = 1
	m.Enqueue(t0, []task.Record{r})
	pull(m, t0, "a", noLoad())
	fx := m.Tick(t0.Add(time.Hour))
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateDead || fx.Finished[0].Attempts != 1 {
		t.Fatalf("expired last attempt: %+v", fx)
	}
}

func TestUnknownExecutorHeartbeat(t *testing.T) {
	m := New(testConfig())
	fx := m.Heartbeat(t0, &messages.Heartbeat{ExecutorID: "ghost", Results: []messages.Result{ok(1, 1), ok(2, 1)}})
	if len(fx.Replies) != 1 || fx.Replies[0].Executor != "ghost" {
		t.Fatalf("replies %+v", fx.Replies)
	}
	if m.Counters.Stale != 2 {
		t.Fatalf("stale %d", m.Counters.Stale)
	}
}

func TestTypeFilter(t *testing.T) {
	m := New(testConfig())
	a := rec(1, normal, 90) // head of the queue
	a.Type = "video"
	b := rec(2, normal, 50)
	b.Type = "image"
	m.Enqueue(t0, []task.Record{a, b})
	register(m, t0, "img", 4, []string{"image"}, nil)
	if got := taskIDs(grantTo(pull(m, t0, "img", noLoad()), "img")); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("image executor got %v, want [2]", got)
	}
	if m.State(1) != messages.StateQueued {
		t.Fatalf("skipped task left the queue: %v", m.State(1))
	}
	register(m, t0, "any", 4, nil, nil)
	if got := taskIDs(grantTo(pull(m, t0, "any", noLoad()), "any")); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("any-type executor got %v, want [1]", got)
	}
}

func TestRequirements(t *testing.T) {
	newM := func() *Machine {
		m := New(testConfig())
		head := rec(1, high, 99)
		head.Requirements = map[string]string{"gpu": "=a100", "cuda": ">= 15.0, < 16"}
		plain := rec(2, high, 10)
		other := rec(3, low, 10)
		m.Enqueue(t0, []task.Record{head, plain, other})
		return m
	}
	cases := []struct {
		caps map[string]string
		want []uint64
	}{
		{map[string]string{"gpu": "a100", "cuda": "15.2"}, []uint64{1, 2, 3}},
		{map[string]string{"gpu": "a100", "cuda": "16.0"}, []uint64{2, 3}},
		{map[string]string{"gpu": "h100", "cuda": "15.2"}, []uint64{2, 3}},
		{map[string]string{"cuda": "15.2"}, []uint64{2, 3}},
		{nil, []uint64{2, 3}},
	}
	for _, c := range cases {
		m := newM()
		register(m, t0, "e", 10, nil, c.caps)
		got := taskIDs(grantTo(pull(m, t0, "e", noLoad()), "e"))
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("caps %v: granted %v, want %v", c.caps, got, c.want)
		}
	}
}

// An executor that can run nothing queued parks; tasks of a type no
// registered executor runs are set aside as unplaceable (issue 14: they
// were queued silently), and come back in order when one registers.
func TestNothingRunnableParks(t *testing.T) {
	m := New(testConfig())
	m.Enqueue(t0, recs(normal, 1, 5))
	register(m, t0, "e", 2, []string{"other"}, nil)
	if fx := pull(m, t0, "e", noLoad()); len(fx.Grants) != 0 {
		t.Fatalf("granted %+v", fx.Grants)
	}
	if m.Queued() != 0 || m.UnplaceableCount() != 5 {
		t.Fatalf("queued %d, unplaceable %d; want 0 and 5", m.Queued(), m.UnplaceableCount())
	}
	if why := m.Reason(1); !strings.Contains(why, "type refused 1 (e)") {
		t.Fatalf("reason %q does not name the type filter refusing e", why)
	}
	register(m, t0, "any", 2, nil, nil)
	if got := taskIDs(grantTo(pull(m, t0, "any", noLoad()), "any")); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("order after skipping: %v", got)
	}
}

func TestScanLimit(t *testing.T) {
	cfg := testConfig()
	cfg.ScanLimit = 2
	m := New(cfg)
	var tasks []task.Record
	for id := uint64(1); id <= 3; id++ {
		r := rec(id, normal, 60)
		r.Type = "x"
		tasks = append(tasks, r)
	}
	tasks = append(tasks, rec(4, normal, 10))
	m.Enqueue(t0, tasks)
	register(m, t0, "x-runner", 1, []string{"x"}, nil) // the x tasks are placeable, just not on e
	register(m, t0, "e", 1, []string{"t"}, nil)
	if fx := pull(m, t0, "e", noLoad()); len(fx.Grants) != 0 {
		t.Fatalf("scanned past ScanLimit: %+v", fx.Grants)
	}
	if m.Queued() != 4 {
		t.Fatalf("queued %d", m.Queued())
	}
}

func TestSatisfies(t *testing.T) {
	cases := []struct {
		capability, requirement string
		want                    bool
	}{
		{"a100", "=a100", true},
		{"a1000", "=a100", false},
		{"", "=a100", false},
		{"15.2", ">= 15.0, < 16", true},
		{"15.0", ">= 15.0, < 16", true},
		{"16.0", ">= 15.0, < 16", false},
		{"14.9.9", ">= 15.0, < 16", false},
		{"v15.1", ">= 15.0, < 16", true},
		{"linux", ">= 15.0", false},
		{"", ">= 1", false},
		{"1.2.3", "1.2.3", true},
		{"1.2.4", "1.2.3", false},
		{"1.2.3", "= 1.2.3", true},
		{"1.26.3", "~> 1.26", true},
		{"2.0", "~> 1.26", false},
		{"1.0", " >= 1.0 ", true},
		{"1.0", ">= banana", false},
	}
	for _, c := range cases {
		if got := task.Satisfies(c.capability, c.requirement); got != c.want {
			t.Errorf("Satisfies(%q, %q) = %v, want %v", c.capability, c.requirement, got, c.want)
		}
	}
}

func TestCancelQueued(t *testing.T) {
	m := New(testConfig())
	m.Enqueue(t0, []task.Record{rec(1, low, 10), rec(2, low, 10)})
	fx := m.Cancel(t0, []uint64{1, 99})
	if fx.Credit != [messages.NumClasses]int{0, 0, 1} {
		t.Fatalf("credit %v, want one low place back", fx.Credit)
	}
	if len(fx.Finished) != 1 || fx.Finished[0].ID != 1 || fx.Finished[0].State != messages.StateCancelled {
		t.Fatalf("finished %+v", fx.Finished)
	}
	if m.Queued() != 1 || m.State(1) != messages.StateUnknown || m.Counters.Cancelled != 1 {
		t.Fatalf("queued %d state %v", m.Queued(), m.State(1))
	}
	// Cancelling again is a no-op.
	if fx = m.Cancel(t0, []uint64{1}); len(fx.Finished) != 0 || fx.Credit != ([messages.NumClasses]int{}) {
		t.Fatalf("second cancel %+v", fx)
	}
}

func TestCancelRetry(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 1, nil, nil)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	pull(m, t0, "e", noLoad())
	pull(m, t0, "e", noLoad(), failed(1, 1))
	fx := m.Cancel(t0, []uint64{1})
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateCancelled || fx.Finished[0].Attempts != 1 {
		t.Fatalf("finished %+v", fx.Finished)
	}
	if fx.Credit != ([messages.NumClasses]int{}) {
		t.Fatalf("credit %v for a task that held no place", fx.Credit)
	}
	if fx = m.Tick(t0.Add(time.Hour)); len(fx.Grants) != 0 {
		t.Fatalf("cancelled retry was released: %+v", fx.Grants)
	}
}

func TestCancelLeased(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 3))
	pull(m, t0, "e", noLoad()) // 1 and 2 leased
	fx := m.Cancel(t0, []uint64{1})
	if len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateCancelled {
		t.Fatalf("finished %+v", fx.Finished)
	}
	if fx.Credit != ([messages.NumClasses]int{}) || len(fx.Grants) != 0 {
		t.Fatalf("cancel of a lease of a busy executor: %+v", fx)
	}
	// The revocation rides on the next grant, with the freed slot's work.
	g := grantTo(pull(m, t0, "e", noLoad()), "e")
	if g == nil || !slices.Equal(g.Cancel, []uint64{1}) || !slices.Equal(taskIDs(g), []uint64{3}) {
		t.Fatalf("next grant %+v", g)
	}
	// Its result, if it comes, is fenced.
	if fx = pull(m, t0, "e", noLoad(), ok(1, 1)); len(fx.Finished) != 0 {
		t.Fatalf("result of a revoked lease accepted: %+v", fx)
	}
	// A revocation is delivered once.
	if g := grantTo(pull(m, t0, "e", noLoad(), ok(2, 1)), "e"); g != nil && len(g.Cancel) != 0 {
		t.Fatalf("revocation repeated: %+v", g)
	}
}

// A revocation reaches a parked executor at once, even with nothing queued.
func TestCancelLeasedServesParked(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 1))
	pull(m, t0, "e", noLoad())
	pull(m, t0, "e", noLoad()) // parked with 1 held
	fx := m.Cancel(t0, []uint64{1})
	g := grantTo(fx, "e")
	if g == nil || !slices.Equal(g.Cancel, []uint64{1}) || len(g.Tasks) != 0 {
		t.Fatalf("grant %+v, want the revocation alone", g)
	}
}

func TestStateAndExecutors(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "b", 1, nil, nil)
	register(m, t0, "a", 3, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	pull(m, t0, "a", messages.LoadReport{CPU: 0.5, InFlight: 0})
	ex := m.Executors()
	if len(ex) != 2 || ex[0].ID != "a" || ex[1].ID != "b" || ex[0].Leases != 2 || ex[0].Load.CPU != 0.5 || ex[0].LastSeen != t0.UnixMilli() {
		t.Fatalf("executors %+v", ex)
	}
	if m.State(1) != messages.StateLeased || m.State(3) != messages.StateUnknown {
		t.Fatalf("states %v %v", m.State(1), m.State(3))
	}
}

// An executor that registers again has restarted: the tasks it held died
// with it. Its leases must not live on, renewed by the new process's
// heartbeats, with nobody running the work.
func TestReregisterLosesOldLeases(t *testing.T) {
	m := New(testConfig())
	register(m, t0, "e", 2, nil, nil)
	m.Enqueue(t0, recs(normal, 1, 2))
	pull(m, t0, "e", noLoad())
	if m.Leases() != 2 {
		t.Fatalf("leases %d", m.Leases())
	}
	fx := m.Register(t0.Add(time.Second), &messages.Register{Version: messages.ProtocolVersion, ExecutorID: "e", Slots: 2})
	if len(fx.Attempts) != 2 || m.Leases() != 0 {
		t.Fatalf("re-registration: attempts %+v, leases %d", fx.Attempts, m.Leases())
	}
	now := t0.Add(time.Second)
	for range 100 { // the new process heartbeats; the old work comes back
		now = now.Add(time.Second)
		m.Heartbeat(now, &messages.Heartbeat{ExecutorID: "e"})
		m.Tick(now)
	}
	g := grantTo(pull(m, now, "e", noLoad()), "e")
	if got := taskIDs(g); len(got) != 2 || g.Tasks[0].Attempt != 2 {
		t.Fatalf("after the restart: granted %+v, want both tasks again as attempt 2", g)
	}
	// Results of the old process are fenced.
	if fx := pull(m, now, "e", noLoad(), ok(1, 1)); len(fx.Finished) != 0 {
		t.Fatalf("old attempt's result accepted: %+v", fx.Finished)
	}
}

// The same incarnation registering again (its Registered was lost or slow,
// so the executor asked again) keeps its leases: its tasks still run. A new
// incarnation has restarted and loses them.
func TestReregisterSameIncarnationKeepsLeases(t *testing.T) {
	m := New(testConfig())
	reg := func(inc uint64) Effects {
		return m.Register(t0, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: "e", Slots: 2, Incarnation: inc})
	}
	reg(7)
	m.Enqueue(t0, recs(normal, 9, 9))
	pull(m, t0, "e", noLoad())
	m.Enqueue(t0, recs(normal, 1, 2))
	// Task 9's run time gives the leases of 1 and 2 an estimate (backlog).
	pull(m, t0, "e", noLoad(), messages.Result{TaskID: 9, Attempt: 1, OK: true, RunNanos: 5e6})
	backlog := m.execs["e"].backlog
	if fx := reg(7); len(fx.Attempts) != 0 || m.Leases() != 2 {
		t.Fatalf("same incarnation again: attempts %+v, leases %d; want both leases kept", fx.Attempts, m.Leases())
	}
	if got := m.execs["e"].backlog; got != backlog || got <= 0 {
		t.Fatalf("backlog after the same incarnation registered again = %v, want the kept leases' %v", got, backlog)
	}
	if fx := pull(m, t0, "e", noLoad(), ok(1, 1)); len(fx.Finished) != 1 {
		t.Fatalf("result of a kept lease not accepted: %+v", fx.Finished)
	}
	if fx := reg(8); len(fx.Attempts) != 1 || m.Leases() != 0 {
		t.Fatalf("new incarnation: attempts %+v, leases %d; want the running task failed", fx.Attempts, m.Leases())
	}
}
