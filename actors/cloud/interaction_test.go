package cloud

import (
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// F6: a cloud executor evicted by the supervisor / EvictAddress (a transient
// connection loss: docs/supervision.md says it "registers again on its next
// message", i.e. within a heartbeat + 1 s) is absent from one snapshot
// (every 500 ms) and is released at once and counted failed.
func TestInteractionCloudExecutorReleasedOnTransientEviction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Provider = "process"
	cfg.Capabilities = map[string]string{"gpu": "a100"}
	m := New(cfg, "n")
	t0 := time.Unix(1_700_000_000, 0)
	un := []task.Unplaceable{{Type: "t", Shape: "gpu =a100", Requirements: map[string]string{"gpu": "=a100"}, Tasks: 1, Since: t0.UnixNano()}}
	fx := m.Observe(t0.Add(4*time.Second), Observation{Unplaceable: un})
	if len(fx.Provisions) != 1 {
		t.Fatalf("setup: %+v", fx)
	}
	id := fx.Provisions[0].Req.ID
	m.Provisioned(id, "h", nil)
	ex := messages.ExecutorStatus{ID: id, Slots: 4, Leases: 1, State: messages.ExecActive}
	m.Observe(t0.Add(5*time.Second), Observation{Executors: []messages.ExecutorStatus{ex}})
	// Evicted (connection blip) and not yet registered again: one snapshot.
	fx = m.Observe(t0.Add(5500*time.Millisecond), Observation{})
	if len(fx.Releases) > 0 {
		t.Fatalf("healthy cloud executor released after one missing snapshot (failed=%d): %+v", m.Counters.Failed, fx.Releases)
	}
}

// F7: a cloud executor provisioned for demand K that is drained (shoal drain,
// or any future drain-before-release) no longer counts as capable, so K's
// tasks are set aside again; registeredFor then refuses K as "registered but
// cannot run the tasks", and the refusal lasts while the tasks stay
// unplaceable — also after that executor is gone. Nothing is provisioned
// again: the tasks are stuck.
func TestInteractionCloudDrainedExecutorRefusesDemandForever(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Provider = "process"
	cfg.Capabilities = map[string]string{"gpu": "a100"}
	m := New(cfg, "n")
	t0 := time.Unix(1_700_000_000, 0)
	un := []task.Unplaceable{{Type: "t", Shape: "gpu =a100", Requirements: map[string]string{"gpu": "=a100"}, Tasks: 1, Since: t0.UnixNano()}}
	fx := m.Observe(t0.Add(4*time.Second), Observation{Unplaceable: un})
	id := fx.Provisions[0].Req.ID
	m.Provisioned(id, "h", nil)
	ex := messages.ExecutorStatus{ID: id, Slots: 4, State: messages.ExecActive}
	m.Observe(t0.Add(5*time.Second), Observation{Executors: []messages.ExecutorStatus{ex}}) // ready, ran the first tasks
	ex.State = messages.ExecDraining                                                        // operator drains it
	un[0].Since = t0.Add(6 * time.Second).UnixNano()                                        // new tasks of K arrive: set aside
	m.Observe(t0.Add(10*time.Second), Observation{Unplaceable: un, Executors: []messages.ExecutorStatus{ex}})
	// It idles out and is released; K's tasks are still waiting.
	now := t0.Add(10 * time.Second)
	for i := 0; i < 200; i++ {
		now = now.Add(500 * time.Millisecond)
		obs := Observation{Unplaceable: un}
		if m.insts[id] != nil && m.insts[id].state != releasing {
			obs.Executors = []messages.ExecutorStatus{ex}
		}
		fx = m.Observe(now, obs)
		for _, r := range fx.Releases {
			m.Released(r.ID, nil)
		}
		if len(fx.Provisions) > 0 {
			return
		}
	}
	t.Fatalf("unplaceable tasks waiting since %v, no cloud executor left (active %d), refused %d: never provisioned again",
		now.Sub(t0), m.Active(), m.Counters.Refused)
}
