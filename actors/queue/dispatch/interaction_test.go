package dispatch

// Interactions of supervision (evict, sleep, drain), placement (set-aside,
// backlog) and re-registration (incarnations) in one dispatcher: each test
// pins a defect found when these were first combined.

import (
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

func regInc(m *Machine, now time.Time, id string, slots int32, types []string, caps map[string]string, inc uint64) Effects {
	return m.Register(now, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: id, Slots: slots,
		Types: types, Capabilities: caps, Incarnation: inc})
}

// F1: a repeated Register of the same incarnation (lost/slow Registered, the
// executor's 3 s registerCheck) wipes ex.revoked: a cancel of a task the
// executor still runs is never delivered.
func TestInteractionSameIncarnationLosesRevoke(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "e", 1, nil, nil, 7)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	if g := grantTo(pull(m, t0, "e", noLoad()), "e"); len(taskIDs(g)) != 1 {
		t.Fatalf("want task 1 granted, got %v", taskIDs(g))
	}
	// Executor's next pull is not yet here (not parked): the revoke waits in ex.revoked.
	m.Cancel(t0, []uint64{1})
	regInc(m, t0, "e", 1, nil, nil, 7) // same run registers again
	g := grantTo(pull(m, t0, "e", noLoad()), "e")
	var cancel []uint64
	if g != nil {
		cancel = g.Cancel
	}
	// Parked pulls with no work give no grant; ask a heartbeat-driven serve too.
	if !slices.Contains(cancel, 1) {
		t.Fatalf("cancel of task 1 never reaches the executor that still runs it (grant %+v)", g)
	}
}

// F2: an executor that registers again (restart, redeploy) with fewer
// capabilities: queued tasks only its old capabilities satisfied stay in the
// heap forever; not set aside, not reported (Reason ""), no cloud demand.
func TestInteractionReregisterFewerCapsLeavesUnplaceableQueued(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "g", 1, nil, map[string]string{"gpu": "a100"}, 1)
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{"gpu": "=a100"}
	m.Enqueue(t0, []task.Record{r})
	if m.Queued() != 1 {
		t.Fatalf("setup: queued %d", m.Queued())
	}
	regInc(m, t0.Add(time.Second), "g", 1, nil, map[string]string{"gpu": "t4"}, 2) // redeployed without the A100
	if m.UnplaceableCount() != 1 || m.Reason(1) == "" {
		t.Fatalf("task nobody can run: queued=%d unplaceable=%d reason=%q (cloud never sees it)",
			m.Queued(), m.UnplaceableCount(), m.Reason(1))
	}
}

// F2b: same, with types: the only executor of type "t" comes back running only "u".
func TestInteractionReregisterFewerTypesLeavesUnplaceableQueued(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "x", 1, []string{"t"}, nil, 1)
	r := rec(1, normal, 50)
	r.Requirements = map[string]string{messages.ReqPin: "=x"}
	m.Enqueue(t0, []task.Record{r})
	regInc(m, t0, "x", 1, []string{"u"}, nil, 2)
	if m.UnplaceableCount() != 1 {
		t.Fatalf("pinned task of a type its executor no longer runs: queued=%d unplaceable=%d", m.Queued(), m.UnplaceableCount())
	}
}

// F3: a sleeping executor still holding a lease (load policy lets it keep
// leases) never hears of a cancel: heartbeats carry no revokes and
// serveParked only looks at parked executors.
func TestInteractionSleepingExecutorNeverHearsCancel(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "e", 2, nil, nil, 1)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	grantTo(pull(m, t0, "e", noLoad()), "e")
	pull(m, t0, "e", noLoad()) // parked
	if _, err := m.SetState(t0, "e", messages.ExecSleeping); err != nil {
		t.Fatal(err)
	}
	fx := m.Cancel(t0, []uint64{1})
	got := slices.Contains(cancelsTo(fx, "e"), 1)
	for i := 1; i <= 5 && !got; i++ {
		now := t0.Add(time.Duration(i) * 7 * time.Second)
		got = slices.Contains(cancelsTo(m.Heartbeat(now, &messages.Heartbeat{ExecutorID: "e", Load: messages.LoadReport{InFlight: 1}}), "e"), 1)
		got = got || slices.Contains(cancelsTo(m.Tick(now), "e"), 1)
	}
	if !got {
		t.Fatalf("cancelled task 1 keeps running on sleeping executor e: revoke never sent")
	}
}

func cancelsTo(fx Effects, id string) []uint64 {
	var out []uint64
	for _, g := range fx.Grants {
		if g.Executor == id {
			out = append(out, g.Grant.Cancel...)
		}
	}
	return out
}

// F4: FreeSlots (read by the stealer, cluster/steal, and the cloud
// saturation trigger) counts draining executors' slots: a node whose only
// executor drains still steals, and the stolen tasks sit in its queue while
// the stealer's heartbeats renew the owner's lease forever.
func TestInteractionDrainingExecutorCountsAsFreeForStealer(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "e", 4, nil, nil, 1)
	pull(m, t0, "e", noLoad())
	if _, err := m.SetState(t0, "e", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	if n := m.FreeSlots(); n != 0 {
		t.Errorf("FreeSlots = %d with the only executor draining: the stealer thinks this node is idle", n)
	}
	r := rec(1, normal, 50)
	r.Attempts, r.MaxAttempts = 0, 1
	if fx := m.EnqueueStolen(t0, []task.Record{r}); len(fx.Stolen) > 0 {
		return // handed back to its owner at once: fine
	}
	for i := 1; i < 50; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		fx := m.Tick(now)
		pull(m, now, "e", noLoad())
		if len(fx.Stolen) > 0 {
			return // handed back to its owner: fine
		}
	}
	t.Fatalf("stolen task still queued (state %v) with no executor that will run it; nothing hands it back", m.State(1))
}

// F5: a repeated Register of the same incarnation (the executor did not
// restart) silently undoes a drain: the executor gets new work again
// although `shoal drain` answered "draining".
func TestInteractionSameIncarnationUndoesDrain(t *testing.T) {
	m := New(testConfig())
	regInc(m, t0, "e", 1, nil, nil, 7)
	if _, err := m.SetState(t0, "e", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	regInc(m, t0, "e", 1, nil, nil, 7) // its first Registered was slow: registerCheck resent Register
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	if g := grantTo(pull(m, t0, "e", noLoad()), "e"); g != nil && len(g.Tasks) > 0 {
		st, _ := m.StateOf("e")
		t.Fatalf("draining executor got new work after a same-incarnation Register (state now %q)", st)
	}
}

// F9 (low; only with Prefetch > MinPrefetch): betterElsewhere compares with
// draining (and sleeping) executors, which take nothing: prefetch is withheld
// for an executor that will never run the task.
func TestInteractionPrefetchWithheldForDrainingExecutor(t *testing.T) {
	cfg := testConfig()
	cfg.Prefetch = 2
	m := New(cfg)
	regInc(m, t0, "a", 4, nil, nil, 1)
	regInc(m, t0, "d", 4, nil, nil, 2)
	m.Enqueue(t0, []task.Record{rec(1, normal, 50)})
	grantTo(pull(m, t0, "a", noLoad()), "a")
	pull(m, t0, "a", noLoad(), messages.Result{TaskID: 1, Attempt: 1, OK: true, RunNanos: 1e6}) // learn 1 ms
	if _, err := m.SetState(t0, "d", messages.ExecDraining); err != nil {
		t.Fatal(err)
	}
	g := grantTo(m.Enqueue(t0, recs(normal, 2, 9)), "a") // a is parked
	if n := len(taskIDs(g)); n <= 4 {
		t.Fatalf("a got %d tasks (4 slots + load-driven prefetch at zero load): the rest wait for draining d", n)
	}
}
