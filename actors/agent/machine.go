// Package agent relays one HTTP/JSON agent (S3.1) onto the dispatcher's
// executor protocol. An agent in any language registers, leases tasks with a
// long poll, heartbeats and completes them over HTTP; its relay actor turns
// those calls into the same Register, Pull and Heartbeat messages a native
// executor sends, so quotas, capability matching, leases and their expiry
// are the dispatcher's, unchanged. The relay never speaks for the agent on
// its own: when the agent goes silent the dispatcher hears nothing and its
// leases expire like any executor's.
//
// The machine decides what to send and whom to answer; the shell (actor.go)
// owns the actor and the channels of waiting HTTP calls.
package agent

import (
	"maps"
	"slices"

	"github.com/shoalrt/shoal/messages"
)

// Waiter is one HTTP lease call waiting for tasks. Token identifies it to
// the shell (its reply channel); the machine never looks inside.
type Waiter struct {
	Token any
	// Max bounds the tasks handed to this call (at least 1).
	Max int
}

// Answer is what a waiting lease call receives.
type Answer struct {
	Waiter *Waiter
	Tasks  []messages.Task
	Cancel []uint64
	Err    *messages.Error
}

// Effects are what the shell must do after a step.
type Effects struct {
	// Send are messages for the dispatcher, sent with the relay as sender.
	Send    []any
	Answers []Answer
}

// Machine is one agent's relay state. It does no I/O.
type Machine struct {
	id         string
	registered bool
	pulling    bool              // a Pull is out (the dispatcher may park it)
	sleeping   bool              // the dispatcher put the agent to sleep: no Pull until a grant wakes it
	buffer     []messages.Task   // granted to the agent, not yet handed over
	cancel     []uint64          // revoked leases the agent has not heard of
	delivered  map[uint64]handed // handed to the agent, not yet reported
	waiters    []*Waiter
	epoch      int64               // heartbeats seen
	load       messages.LoadReport // the agent's last reported resources
}

// remember keeps the resources of a call that reported them and fills a
// call that did not (a complete call, say) with the last ones, so the
// dispatcher and the servers view keep the agent's figures between calls.
func (m *Machine) remember(load messages.LoadReport) messages.LoadReport {
	if load.CPU != 0 || load.Mem != 0 || load.IO != 0 || load.Disk != 0 || load.Procs != 0 {
		m.load = load
		return load
	}
	ip := load.IP
	load = m.load
	if ip != "" {
		load.IP = ip
	}
	return load
}

type handed struct {
	attempt int32
	epoch   int64 // m.epoch when handed over
}

// New returns the relay machine of agent id.
func New(id string) *Machine {
	return &Machine{id: id, delivered: map[uint64]handed{}}
}

// Registered reports whether the dispatcher knows the agent (as far as the
// relay has heard).
func (m *Machine) Registered() bool { return m.registered }

// Register starts a (re)registration: what the agent held is gone (the
// dispatcher fails those leases when it sees the Register again).
func (m *Machine) Register(r *messages.Register) Effects {
	var fx Effects
	m.registered, m.pulling, m.sleeping = false, false, false
	m.buffer, m.cancel = nil, nil
	clear(m.delivered)
	m.answerAll(&fx, messages.Errorf(messages.CodeUnknownExecutor, "agent %q registered again", m.id))
	fx.Send = append(fx.Send, r)
	return fx
}

// Registered takes the dispatcher's answer to Register.
func (m *Machine) RegisteredReply(r *messages.Registered) {
	m.registered = r.Err == nil
}

// Lease is an HTTP lease call: report results, then hand over buffered tasks
// or wait for the dispatcher's next grant.
func (m *Machine) Lease(w *Waiter, load messages.LoadReport, results []messages.Result) Effects {
	var fx Effects
	if !m.registered {
		fx.Answers = append(fx.Answers, Answer{Waiter: w, Err: m.unknown()})
		return fx
	}
	w.Max = max(w.Max, 1)
	load = m.remember(load)
	results = m.reported(results)
	m.waiters = append(m.waiters, w)
	m.serve(&fx)
	load.InFlight = int32(len(m.delivered) + len(m.buffer))
	switch {
	case len(m.waiters) > 0 && !m.pulling && !m.sleeping:
		m.pulling = true
		fx.Send = append(fx.Send, &messages.Pull{ExecutorID: m.id, Load: load, Results: results})
	default:
		// A Pull is out, or the call was served from the buffer: the
		// results (and the lease renewal) ride a Heartbeat.
		fx.Send = append(fx.Send, &messages.Heartbeat{ExecutorID: m.id, Load: load, Results: results})
	}
	return fx
}

// Heartbeat renews the agent's leases and reports results. It returns the
// revoked leases the agent has not heard of yet.
func (m *Machine) Heartbeat(load messages.LoadReport, held []uint64, results []messages.Result) ([]uint64, Effects) {
	var fx Effects
	if !m.registered {
		return nil, fx
	}
	load = m.remember(load)
	results = m.reported(results)
	if held != nil {
		results = append(results, m.lost(held)...)
	}
	load.InFlight = int32(len(m.delivered) + len(m.buffer))
	fx.Send = append(fx.Send, &messages.Heartbeat{ExecutorID: m.id, Load: load, Held: held, Results: results})
	cancel := m.cancel
	m.cancel = nil
	return cancel, fx
}

// lost fails the tasks handed to the agent that it does not hold and never
// reported (say, a lease response that never reached it): left leased, the
// agent's heartbeats would renew them forever with nobody running them. A
// task handed over since the previous heartbeat is spared: the agent may
// have built this heartbeat before its lease response arrived.
func (m *Machine) lost(held []uint64) []messages.Result {
	m.epoch++
	var out []messages.Result
	for _, id := range slices.Sorted(maps.Keys(m.delivered)) {
		h := m.delivered[id]
		if h.epoch < m.epoch-1 && !slices.Contains(held, id) {
			out = append(out, messages.Result{TaskID: id, Attempt: h.attempt, Error: "agent " + m.id + " does not hold this task (its lease response was lost?)"})
			delete(m.delivered, id)
		}
	}
	return out
}

// reported forgets delivered tasks the agent reports on.
func (m *Machine) reported(results []messages.Result) []messages.Result {
	for _, r := range results {
		delete(m.delivered, r.TaskID)
	}
	return results
}

// Granted takes a grant (or a refusal) from the dispatcher.
func (m *Machine) Granted(g *messages.Grant) Effects {
	var fx Effects
	m.pulling = false
	if g.Err != nil {
		m.registered = false
		m.buffer = nil
		clear(m.delivered)
		m.answerAll(&fx, g.Err)
		return fx
	}
	for _, id := range g.Cancel {
		if i := slices.IndexFunc(m.buffer, func(t messages.Task) bool { return t.ID == id }); i >= 0 {
			m.buffer = slices.Delete(m.buffer, i, i+1) // never handed over: nothing to tell
			continue
		}
		delete(m.delivered, id)
		m.cancel = append(m.cancel, id)
	}
	m.buffer = append(m.buffer, g.Tasks...)
	m.serve(&fx)
	// Asleep (docs/supervision.md), the relay stops pulling; its lease
	// calls wait out their timeout and renew by Heartbeat until a grant
	// without Sleep wakes it. Pulling again would spin against the
	// dispatcher's sleep answers.
	m.sleeping = g.Sleep
	if len(m.waiters) > 0 && m.registered && !m.sleeping {
		m.pulling = true
		load := m.load
		load.InFlight = int32(len(m.delivered))
		fx.Send = append(fx.Send, &messages.Pull{ExecutorID: m.id, Load: load})
	}
	return fx
}

// Withdraw removes a waiter whose HTTP call gave up. It reports false when
// the waiter was answered already (its answer is in the shell's channel).
func (m *Machine) Withdraw(w *Waiter) bool {
	i := slices.Index(m.waiters, w)
	if i < 0 {
		return false
	}
	m.waiters = slices.Delete(m.waiters, i, i+1)
	return true
}

// Return puts back tasks whose lease response could not be delivered.
func (m *Machine) Return(tasks []messages.Task) Effects {
	var fx Effects
	for _, t := range tasks {
		delete(m.delivered, t.ID)
	}
	m.buffer = append(slices.Clone(tasks), m.buffer...)
	m.serve(&fx)
	return fx
}

// serve hands buffered tasks and pending cancels to waiters, oldest first.
func (m *Machine) serve(fx *Effects) {
	for len(m.waiters) > 0 && (len(m.buffer) > 0 || len(m.cancel) > 0) {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		n := min(w.Max, len(m.buffer))
		a := Answer{Waiter: w, Tasks: slices.Clone(m.buffer[:n]), Cancel: m.cancel}
		m.buffer = m.buffer[n:]
		m.cancel = nil
		for _, t := range a.Tasks {
			m.delivered[t.ID] = handed{attempt: t.Attempt, epoch: m.epoch}
		}
		fx.Answers = append(fx.Answers, a)
	}
	if len(m.waiters) == 0 {
		m.waiters = nil
	}
}

func (m *Machine) answerAll(fx *Effects, err *messages.Error) {
	for _, w := range m.waiters {
		fx.Answers = append(fx.Answers, Answer{Waiter: w, Err: err})
	}
	m.waiters = nil
}

func (m *Machine) unknown() *messages.Error {
	return messages.Errorf(messages.CodeUnknownExecutor, "agent %q is not registered with this node; register again", m.id)
}

// Buffered is the number of tasks granted but not handed over.
func (m *Machine) Buffered() int { return len(m.buffer) }

// Delivered is the number of tasks handed to the agent and not reported.
func (m *Machine) Delivered() int { return len(m.delivered) }

// Waiting is the number of lease calls waiting.
func (m *Machine) Waiting() int { return len(m.waiters) }
