// Package executor runs tasks (S0.7). An executor registers with a node's
// dispatcher, pulls work with its live load, runs registered handlers in
// slots, and reports results in batches. The machine decides when to pull
// and what to report; the shell owns goroutines, timers and the network.
package executor

import (
	"fmt"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Config describes one executor.
type Config struct {
	// ID names the executor; it must be unique among a node's executors.
	ID string
	// Slots is how many tasks run at once. Default 4 × GOMAXPROCS is the
	// SDK's choice; here it must be > 0.
	Slots int
	// Capabilities are labels and tool versions (S1.1), e.g. os=linux.
	Capabilities map[string]string
	// Token authenticates the executor to the node (empty: none).
	Token string
	// LoadInterval is how often /proc load is sampled. Default 1 s.
	LoadInterval time.Duration
	// MaxBatch bounds the results one report carries. Default 1024.
	MaxBatch int
	// RegisterRetry is how long the executor waits for Registered before it
	// registers again. Zero means RegisterRetry (3 s).
	RegisterRetry time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("executor: ID must be set")
	case c.Slots <= 0:
		return fmt.Errorf("executor: Slots must be > 0, got %d", c.Slots)
	case c.LoadInterval <= 0:
		return fmt.Errorf("executor: LoadInterval must be > 0, got %v", c.LoadInterval)
	case c.MaxBatch <= 0:
		return fmt.Errorf("executor: MaxBatch must be > 0, got %d", c.MaxBatch)
	case c.RegisterRetry < 0:
		return fmt.Errorf("executor: RegisterRetry must be >= 0 (0: %v), got %v", RegisterRetry, c.RegisterRetry)
	}
	return nil
}

// Machine tracks what the executor holds and decides its next message.
type Machine struct {
	cfg        Config
	registered bool
	pulling    bool                // a Pull is out (the node may hold it until work comes)
	held       map[uint64]struct{} // leased tasks not yet reported
	results    []messages.Result
	load       messages.LoadReport
	sleeping   bool   // told to sleep: heartbeat only, no pulls (S2.10)
	unhealthy  string // own health check's failure, sent with heartbeats
}

// NewMachine returns a machine for cfg.
func NewMachine(cfg Config) *Machine {
	return &Machine{cfg: cfg, held: map[uint64]struct{}{}}
}

// IsRegistered tells whether the node acknowledged the registration.
func (m *Machine) IsRegistered() bool { return m.registered }

// Registered marks the executor registered (or not, after the node forgot it).
func (m *Machine) Registered(ok bool) {
	m.registered = ok
	m.pulling, m.sleeping = false, false
}

// SetLoad records the latest host load sample.
func (m *Machine) SetLoad(l messages.LoadReport) { m.load = l }

// Granted takes a grant: the tasks to start now, and the leases revoked.
func (m *Machine) Granted(g *messages.Grant) []messages.Task {
	m.pulling = false
	m.sleeping = g.Sleep
	for _, t := range g.Tasks {
		m.held[t.ID] = struct{}{}
	}
	for _, id := range g.Cancel {
		delete(m.held, id)
	}
	return g.Tasks
}

// Done records a finished execution for the next report.
func (m *Machine) Done(r messages.Result) {
	delete(m.held, r.TaskID)
	m.results = append(m.results, r)
}

// Next returns the message to send now, if any: a Pull while none is out
// (carrying results), else a Heartbeat with results once some are waiting.
// heartbeat forces a Heartbeat even without results (lease renewal).
func (m *Machine) Next(heartbeat bool) any {
	if !m.registered {
		return nil
	}
	load := m.load
	load.InFlight = int32(len(m.held))
	if !m.pulling && !m.sleeping { // the node holds a Pull until work fits, so keep one out
		m.pulling = true
		return &messages.Pull{ExecutorID: m.cfg.ID, Load: load, Free: int32(max(m.cfg.Slots-len(m.held), 0)), Results: m.take()}
	}
	if len(m.results) > 0 || heartbeat {
		hb := &messages.Heartbeat{ExecutorID: m.cfg.ID, Load: load, Results: m.take(), Unhealthy: m.unhealthy}
		if heartbeat {
			hb.Held = m.heldIDs()
		}
		return hb
	}
	return nil
}

func (m *Machine) take() []messages.Result {
	if len(m.results) == 0 {
		return nil
	}
	n := min(len(m.results), m.cfg.MaxBatch)
	out := m.results[:n:n]
	m.results = m.results[n:]
	if len(m.results) == 0 {
		m.results = nil
	}
	return out
}

func (m *Machine) heldIDs() []uint64 {
	ids := make([]uint64, 0, len(m.held))
	for id := range m.held {
		ids = append(ids, id)
	}
	return ids
}

// SetHealth records the executor's own health check (nil: healthy); it
// rides on the next heartbeat.
func (m *Machine) SetHealth(err error) {
	m.unhealthy = ""
	if err != nil {
		m.unhealthy = err.Error()
	}
}

// Sleeping reports whether the node put the executor to sleep.
func (m *Machine) Sleeping() bool { return m.sleeping }

// Held is the number of tasks the executor holds.
func (m *Machine) Held() int { return len(m.held) }

// Pending is the number of results not yet reported.
func (m *Machine) Pending() int { return len(m.results) }
