package steal

import (
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

var t0 = time.Unix(1_700_000_000, 0)

func classOf(int32) messages.Class { return messages.ClassNormal }

func testMachine() *Machine {
	cfg := DefaultConfig()
	cfg.MinDepth = 10
	return New(cfg, "me", classOf)
}

var idle = Local{FreeSlots: 4, Types: []string{"echo"}}

func sendsOf[T any](fx Effects) []T {
	var out []T
	for _, s := range fx.Sends {
		if m, ok := s.Msg.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

// The whole cycle: register at the most loaded peer, pull, queue the
// stolen tasks locally, report their results at once, renew leases.
func TestStealCycle(t *testing.T) {
	m := testMachine()
	peers := []Peer{{Name: "a", Remote: "ra", Queued: 50, FreeSlots: 2}, {Name: "b", Remote: "rb", Queued: 80, FreeSlots: 2}, {Name: "c", Remote: "rc", Queued: 5, FreeSlots: 3}}
	fx := m.Tick(t0, idle, peers)
	regs := sendsOf[*messages.Register](fx)
	if len(regs) != 1 || fx.Sends[0].Peer != "b" || regs[0].ExecutorID != "steal/me" || regs[0].Slots != 4 || regs[0].Types[0] != "echo" {
		t.Fatalf("register: %+v", fx.Sends)
	}
	if fx := m.Tick(t0, idle, peers); len(fx.Sends) != 0 {
		t.Fatalf("registered twice: %+v", fx.Sends)
	}
	m.Registered("b", &messages.Registered{HeartbeatMillis: 500})
	fx = m.Tick(t0, idle, peers)
	if p := sendsOf[*messages.Pull](fx); len(p) != 1 || fx.Sends[0].Peer != "b" {
		t.Fatalf("pull: %+v", fx.Sends)
	}
	if fx := m.Tick(t0, idle, peers); len(sendsOf[*messages.Pull](fx)) != 0 {
		t.Fatal("a second pull while one is out")
	}
	fx = m.Grant("b", &messages.Grant{Tasks: []messages.Task{{ID: 1, Type: "echo", Attempt: 2}, {ID: 2, Type: "echo", Attempt: 1}}})
	if len(fx.Enqueue) != 2 || fx.Enqueue[0].Attempts != 1 || m.Held() != 2 || m.Stolen != 2 {
		t.Fatalf("grant: %+v held %d", fx.Enqueue, m.Held())
	}
	fx = m.Results(t0, []messages.Result{{TaskID: 1, Attempt: 2, OK: true}, {TaskID: 99}})
	hb := sendsOf[*messages.Heartbeat](fx)
	if len(hb) != 1 || len(hb[0].Results) != 1 || len(hb[0].Held) != 1 || hb[0].Held[0] != 2 || m.Held() != 1 {
		t.Fatalf("results: %+v held %d", hb, m.Held())
	}
	// Busy now: no stealing, but the lease of task 2 is renewed.
	busy := Local{Queued: 3, FreeSlots: 0}
	if fx := m.Tick(t0.Add(100*time.Millisecond), busy, peers); len(fx.Sends) != 0 {
		t.Fatalf("heartbeat before it was due: %+v", fx.Sends)
	}
	fx = m.Tick(t0.Add(600*time.Millisecond), busy, peers)
	if hb := sendsOf[*messages.Heartbeat](fx); len(hb) != 1 || len(hb[0].Held) != 1 || len(sendsOf[*messages.Pull](fx)) != 0 {
		t.Fatalf("renewal: %+v", fx.Sends)
	}
	// The peer revokes task 2, then leaves.
	fx = m.Grant("b", &messages.Grant{Cancel: []uint64{2}})
	if len(fx.Cancel) != 1 || m.Held() != 0 {
		t.Fatalf("revoke: %+v", fx)
	}
	m.Grant("b", &messages.Grant{Tasks: []messages.Task{{ID: 3, Attempt: 1}}})
	fx = m.Tick(t0.Add(time.Second), busy, peers[:1])
	if len(fx.Cancel) != 1 || fx.Cancel[0] != 3 || m.Held() != 0 || m.Remote("b") != "" {
		t.Fatalf("leave: %+v", fx)
	}
}

func TestWhomToSteal(t *testing.T) {
	cases := []struct {
		name  string
		local Local
		peers []Peer
		want  string
	}{
		{"nobody loaded", idle, []Peer{{Name: "a", Queued: 9, FreeSlots: 1}}, ""},
		{"shallow queue, no free slot there", idle, []Peer{{Name: "a", Queued: 1}}, "a"},
		{"deepest wins", idle, []Peer{{Name: "a", Queued: 20, FreeSlots: 1}, {Name: "b", Queued: 30, FreeSlots: 9}}, "b"},
		{"own queue not empty", Local{Queued: 1, FreeSlots: 4, AnyType: true}, []Peer{{Name: "a", Queued: 100}}, ""},
		{"no free slot", Local{AnyType: true}, []Peer{{Name: "a", Queued: 100}}, ""},
		{"no executor type", Local{FreeSlots: 4}, []Peer{{Name: "a", Queued: 100}}, ""},
	}
	for _, c := range cases {
		fx := testMachine().Tick(t0, c.local, c.peers)
		got := ""
		if len(fx.Sends) > 0 {
			got = fx.Sends[0].Peer
		}
		if got != c.want {
			t.Errorf("%s: stole from %q, want %q", c.name, got, c.want)
		}
	}
}

// A peer that forgot the stealer answers with an error: its stolen tasks
// are dropped here and the stealer registers again.
func TestForgottenStealerRegistersAgain(t *testing.T) {
	m := testMachine()
	peers := []Peer{{Name: "a", Remote: "ra", Queued: 50}}
	m.Tick(t0, idle, peers)
	m.Registered("a", &messages.Registered{})
	m.Tick(t0, idle, peers)
	m.Grant("a", &messages.Grant{Tasks: []messages.Task{{ID: 7, Attempt: 1}}})
	fx := m.Grant("a", &messages.Grant{Err: messages.Errorf(messages.CodeUnknownExecutor, "who")})
	if len(fx.Cancel) != 1 || m.Held() != 0 {
		t.Fatalf("%+v", fx)
	}
	if regs := sendsOf[*messages.Register](m.Tick(t0, idle, peers)); len(regs) != 1 {
		t.Fatal("did not register again")
	}
}
