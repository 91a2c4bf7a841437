package executor

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

func machineConfig(slots, maxBatch int) Config {
	return Config{ID: "ex-1", Slots: slots, LoadInterval: time.Second, MaxBatch: maxBatch}
}

func grant(ids ...uint64) *messages.Grant {
	g := &messages.Grant{}
	for _, id := range ids {
		g.Tasks = append(g.Tasks, messages.Task{ID: id, Attempt: 1})
	}
	return g
}

func result(id uint64) messages.Result { return messages.Result{TaskID: id, Attempt: 1, OK: true} }

func resultIDs(rs []messages.Result) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.TaskID)
	}
	return out
}

func TestMachineConfigValidate(t *testing.T) {
	if err := machineConfig(1, 1).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"ID":           {Slots: 1, LoadInterval: 1, MaxBatch: 1},
		"Slots":        {ID: "x", LoadInterval: 1, MaxBatch: 1},
		"LoadInterval": {ID: "x", Slots: 1, MaxBatch: 1},
		"MaxBatch":     {ID: "x", Slots: 1, LoadInterval: 1},
	} {
		if c.Validate() == nil {
			t.Errorf("%s: bad config accepted", name)
		}
	}
}

func TestNothingBeforeRegistration(t *testing.T) {
	m := NewMachine(machineConfig(2, 10))
	m.Done(result(1))
	if msg := m.Next(true); msg != nil {
		t.Fatalf("unregistered executor sent %T", msg)
	}
}

func TestPullFirst(t *testing.T) {
	m := NewMachine(machineConfig(4, 10))
	m.SetLoad(messages.LoadReport{CPU: 0.5, Mem: 0.25, IO: 0.1, InFlight: 99})
	m.Registered(true)
	p, isPull := m.Next(false).(*messages.Pull)
	if !isPull {
		t.Fatal("first message is not a Pull")
	}
	if p.ExecutorID != "ex-1" || p.Free != 4 || len(p.Results) != 0 {
		t.Fatalf("pull %+v", p)
	}
	if p.Load.CPU != 0.5 || p.Load.Mem != 0.25 || p.Load.IO != 0.1 || p.Load.InFlight != 0 {
		t.Fatalf("load %+v: want the sample with InFlight from held tasks", p.Load)
	}
	// One Pull out at a time: nothing more to say without results.
	if msg := m.Next(false); msg != nil {
		t.Fatalf("second message %T while a Pull is out", msg)
	}
}

func TestGrantThenPullAgain(t *testing.T) {
	m := NewMachine(machineConfig(4, 10))
	m.Registered(true)
	m.Next(false)
	tasks := m.Granted(grant(1, 2, 3))
	if len(tasks) != 3 || m.Held() != 3 {
		t.Fatalf("granted %v, held %d", tasks, m.Held())
	}
	p, isPull := m.Next(false).(*messages.Pull)
	if !isPull || p.Free != 1 || p.Load.InFlight != 3 {
		t.Fatalf("pull after a grant %+v", p)
	}
	// Over-granted (prefetch): free never goes negative.
	m.Granted(grant(4, 5, 6))
	if p := m.Next(false).(*messages.Pull); p.Free != 0 || p.Load.InFlight != 6 {
		t.Fatalf("over-full pull %+v", p)
	}
}

func TestHeartbeatWithResultsWhilePullOut(t *testing.T) {
	m := NewMachine(machineConfig(2, 10))
	m.Registered(true)
	m.Next(false)
	m.Granted(grant(1, 2))
	m.Next(false) // the next Pull is out
	m.Done(result(1))
	if m.Held() != 1 || m.Pending() != 1 {
		t.Fatalf("held %d pending %d", m.Held(), m.Pending())
	}
	hb, isHB := m.Next(false).(*messages.Heartbeat)
	if !isHB {
		t.Fatal("results while a Pull is out: want a Heartbeat")
	}
	if !slices.Equal(resultIDs(hb.Results), []uint64{1}) || hb.Held != nil || hb.Load.InFlight != 1 || hb.ExecutorID != "ex-1" {
		t.Fatalf("heartbeat %+v", hb)
	}
	if m.Pending() != 0 || m.Next(false) != nil {
		t.Fatalf("results reported twice")
	}
}

func TestResultsRideOnPull(t *testing.T) {
	m := NewMachine(machineConfig(2, 10))
	m.Registered(true)
	m.Next(false)
	m.Granted(grant(1, 2)) // the Pull is answered: next message is a Pull
	m.Done(result(2))
	p, isPull := m.Next(false).(*messages.Pull)
	if !isPull || !slices.Equal(resultIDs(p.Results), []uint64{2}) || p.Free != 1 {
		t.Fatalf("pull %+v", p)
	}
}

func TestForcedHeartbeatCarriesHeld(t *testing.T) {
	m := NewMachine(machineConfig(8, 10))
	m.Registered(true)
	m.Next(false)
	m.Granted(grant(5, 3, 9))
	m.Next(false)
	hb, isHB := m.Next(true).(*messages.Heartbeat)
	if !isHB {
		t.Fatal("forced heartbeat missing")
	}
	held := slices.Clone(hb.Held)
	slices.Sort(held)
	if !slices.Equal(held, []uint64{3, 5, 9}) || len(hb.Results) != 0 {
		t.Fatalf("heartbeat %+v", hb)
	}
	// Even holding nothing, a forced heartbeat renews (and is sent).
	m = NewMachine(machineConfig(1, 10))
	m.Registered(true)
	m.Next(false)
	if hb, isHB := m.Next(true).(*messages.Heartbeat); !isHB || len(hb.Held) != 0 {
		t.Fatalf("idle forced heartbeat %+v", hb)
	}
	// With no Pull out, the forced message is a Pull (which renews too).
	m.Granted(grant())
	if _, isPull := m.Next(true).(*messages.Pull); !isPull {
		t.Fatal("no Pull out: want a Pull")
	}
}

func TestMaxBatchSplitsResults(t *testing.T) {
	m := NewMachine(machineConfig(10, 2))
	m.Registered(true)
	m.Next(false)
	m.Granted(grant(1, 2, 3, 4, 5))
	for id := uint64(1); id <= 5; id++ {
		m.Done(result(id))
	}
	p := m.Next(false).(*messages.Pull)
	first := p.Results
	if !slices.Equal(resultIDs(first), []uint64{1, 2}) {
		t.Fatalf("pull results %v", resultIDs(first))
	}
	var rest []uint64
	for {
		msg := m.Next(false)
		if msg == nil {
			break
		}
		hb := msg.(*messages.Heartbeat)
		if len(hb.Results) > 2 || len(hb.Results) == 0 {
			t.Fatalf("heartbeat of %d results, MaxBatch 2", len(hb.Results))
		}
		rest = append(rest, resultIDs(hb.Results)...)
	}
	if !slices.Equal(rest, []uint64{3, 4, 5}) {
		t.Fatalf("heartbeats carried %v", rest)
	}
	// Reported batches are not overwritten by later results.
	m.Done(result(6))
	m.Done(result(7))
	if !slices.Equal(resultIDs(first), []uint64{1, 2}) {
		t.Fatalf("first batch changed to %v", resultIDs(first))
	}
}

func TestRevokedLeasesDropped(t *testing.T) {
	m := NewMachine(machineConfig(4, 10))
	m.Registered(true)
	m.Next(false)
	m.Granted(grant(1, 2))
	g := grant(3)
	g.Cancel = []uint64{1}
	m.Granted(g)
	if m.Held() != 2 {
		t.Fatalf("held %d, want 2 and 3", m.Held())
	}
	hb := m.Next(false).(*messages.Pull)
	if hb.Free != 2 {
		t.Fatalf("free %d", hb.Free)
	}
}

func TestReregistrationRestartsPull(t *testing.T) {
	m := NewMachine(machineConfig(1, 10))
	m.Registered(true)
	m.Next(false)
	m.Registered(false) // the node forgot us
	if msg := m.Next(true); msg != nil {
		t.Fatalf("sent %T while unregistered", msg)
	}
	m.Registered(true)
	if _, isPull := m.Next(false).(*messages.Pull); !isPull {
		t.Fatal("after registering again: want a Pull")
	}
}

// Property: every result is reported exactly once, in order, in batches of
// at most MaxBatch, and at most one Pull is out at a time.
func TestReportProperty(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 3))
		maxBatch := 1 + rng.IntN(4)
		m := NewMachine(machineConfig(1+rng.IntN(4), maxBatch))
		m.Registered(true)
		var next uint64
		var running, reported []uint64
		var done []uint64
		pullOut := false
		send := func(hb bool) {
			for {
				msg := m.Next(hb)
				hb = false
				switch msg := msg.(type) {
				case nil:
					return
				case *messages.Pull:
					if pullOut {
						t.Fatalf("seed %d: second Pull while one is out", seed)
					}
					pullOut = true
					if len(msg.Results) > maxBatch {
						t.Fatalf("seed %d: pull of %d results", seed, len(msg.Results))
					}
					reported = append(reported, resultIDs(msg.Results)...)
				case *messages.Heartbeat:
					if len(msg.Results) > maxBatch {
						t.Fatalf("seed %d: heartbeat of %d results", seed, len(msg.Results))
					}
					reported = append(reported, resultIDs(msg.Results)...)
				}
				if m.Pending() == 0 {
					return
				}
			}
		}
		send(false)
		for range 300 {
			switch rng.IntN(4) {
			case 0:
				if pullOut {
					var ids []uint64
					for range rng.IntN(3) {
						next++
						ids = append(ids, next)
					}
					m.Granted(grant(ids...))
					running = append(running, ids...)
					pullOut = false
				}
			case 1:
				if len(running) > 0 {
					i := rng.IntN(len(running))
					m.Done(result(running[i]))
					done = append(done, running[i])
					running = slices.Delete(running, i, i+1)
				}
			}
			send(rng.IntN(5) == 0)
			if m.Held() != len(running) {
				t.Fatalf("seed %d: held %d, running %d", seed, m.Held(), len(running))
			}
		}
		if !slices.Equal(reported, done) {
			t.Fatalf("seed %d: reported %v, finished %v", seed, reported, done)
		}
	}
}

func TestSleepStopsPullsUntilWoken(t *testing.T) {
	m := NewMachine(machineConfig(2, 10))
	m.Registered(true)
	if _, ok := m.Next(false).(*messages.Pull); !ok {
		t.Fatal("first message is not a pull")
	}
	m.Granted(&messages.Grant{Sleep: true, HeartbeatMillis: 5000})
	if !m.Sleeping() {
		t.Fatal("not sleeping after Grant{Sleep}")
	}
	if msg := m.Next(false); msg != nil {
		t.Fatalf("sleeping executor sent %T", msg)
	}
	m.SetHealth(errors.New("disk full"))
	hb, ok := m.Next(true).(*messages.Heartbeat)
	if !ok || hb.Unhealthy != "disk full" {
		t.Fatalf("sleeping heartbeat %+v", hb)
	}
	m.SetHealth(nil)
	// A grant without Sleep wakes it: it runs the tasks and pulls again.
	if got := m.Granted(grant(7)); len(got) != 1 || m.Sleeping() {
		t.Fatalf("waking grant: tasks %v, sleeping %v", got, m.Sleeping())
	}
	p, ok := m.Next(false).(*messages.Pull)
	if !ok || p.Free != 1 {
		t.Fatalf("woken executor sent %+v, want a pull with 1 free slot", p)
	}
	hb, _ = m.Next(true).(*messages.Heartbeat)
	if hb == nil || hb.Unhealthy != "" {
		t.Fatalf("healthy heartbeat %+v", hb)
	}
}
