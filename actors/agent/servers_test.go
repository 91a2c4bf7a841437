package agent

import (
	"testing"

	"github.com/shoalrt/shoal/messages"
)

// The agent's last reported resources ride every message to the
// dispatcher, also calls that report none (complete) and the relay's own
// re-pull, so the servers view keeps its figures between calls.
func TestLoadKeptBetweenCalls(t *testing.T) {
	m := registered(t)
	full := messages.LoadReport{CPU: 0.5, Mem: 0.25, Disk: 0.75, Procs: 40, IP: "10.0.0.9"}
	_, fx := m.Heartbeat(full, nil, nil)
	if hb := fx.Send[0].(*messages.Heartbeat); hb.Load.Procs != 40 || hb.Load.IP != "10.0.0.9" {
		t.Fatalf("heartbeat load %+v", hb.Load)
	}
	_, fx = m.Heartbeat(messages.LoadReport{IP: "10.0.0.9"}, nil, nil) // a complete call
	if hb := fx.Send[0].(*messages.Heartbeat); hb.Load.CPU != 0.5 || hb.Load.Disk != 0.75 || hb.Load.Procs != 40 {
		t.Fatalf("complete lost the load: %+v", hb.Load)
	}
	w := &Waiter{Max: 1}
	m.Lease(w, messages.LoadReport{}, nil)
	w2 := &Waiter{Max: 1}
	m.Lease(w2, messages.LoadReport{}, nil)
	fx = m.Granted(&messages.Grant{Tasks: tasks(1)}) // w2 still waits: the relay pulls again
	var pull *messages.Pull
	for _, s := range fx.Send {
		if p, ok := s.(*messages.Pull); ok {
			pull = p
		}
	}
	if pull == nil || pull.Load.Procs != 40 || pull.Load.IP != "10.0.0.9" || pull.Load.InFlight != 1 {
		t.Fatalf("re-pull %+v", pull)
	}
}
