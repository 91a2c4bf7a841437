// Package request is the intake actor (S0.1): it validates submissions,
// assigns ids, computes each task's dedupe digest, and hands the batch to the
// store. Only after the batch is durable is the client acknowledged.
package request

import (
	"fmt"
	"maps"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config is the intake's policy: what a task may be (task.Policy, shared
// with cluster routers and the SDK) and how much intake admits before it
// refuses with CodeOverloaded.
type Config struct {
	task.Policy
	// StandbyLimit is how many tasks may wait in standby before intake
	// refuses new work with CodeOverloaded. Default 1,000,000.
	StandbyLimit int64
	// MaxInflight bounds the tasks accepted but not yet durable (queued for
	// the store's group commit). Past it intake refuses with CodeOverloaded
	// instead of blocking: a slow disk never turns into an unbounded mailbox.
	// Default 100,000.
	MaxInflight int64
	// Timeouts is the run timeout per task type for tasks that name none
	// (TaskSpec.TimeoutMillis 0); a type missing here has DefaultTimeout.
	// Default none.
	Timeouts map[string]time.Duration
	// DefaultTimeout is the run timeout of tasks whose type has no entry in
	// Timeouts and that name none. 0: no timeout. Default 0.
	DefaultTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Policy: task.DefaultPolicy(), StandbyLimit: 1_000_000, MaxInflight: 100_000}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	switch {
	case c.StandbyLimit <= 0:
		return fmt.Errorf("request: StandbyLimit must be > 0, got %d", c.StandbyLimit)
	case c.MaxInflight <= 0:
		return fmt.Errorf("request: MaxInflight must be > 0, got %d", c.MaxInflight)
	case c.DefaultTimeout < 0:
		return fmt.Errorf("request: DefaultTimeout must be >= 0 (0: none), got %v", c.DefaultTimeout)
	}
	for typ, d := range c.Timeouts {
		if d <= 0 {
			return fmt.Errorf("request: Timeouts[%q] must be > 0, got %v", typ, d)
		}
	}
	return nil
}

// Machine validates and numbers submissions. It does no I/O.
type Machine struct {
	*task.Checker
	cfg      Config
	nextID   uint64
	standby  int64
	inflight int64 // accepted, not yet durable
}

// New returns a machine whose next id follows maxID (the store's high-water mark).
func New(cfg Config, maxID uint64) *Machine {
	return &Machine{Checker: task.NewChecker(cfg.Policy), cfg: cfg, nextID: maxID + 1}
}

// SetStandby records how many tasks wait before the queues (admission
// control): the pump's standby count plus the tasks accepted that the pump
// has not classified yet (not yet durable, or durable and on their way).
func (m *Machine) SetStandby(n int64) { m.standby = n }

// Committed records that n accepted tasks are durable (or failed to be).
func (m *Machine) Committed(n int) { m.inflight -= int64(n) }

// Inflight is the number of accepted tasks not yet durable.
func (m *Machine) Inflight() int64 { return m.inflight }

// Accept validates s and returns the records to persist, or a typed error.
// On error no id is consumed and nothing is to be written.
func (m *Machine) Accept(now time.Time, s *messages.Submit) ([]task.Record, *messages.Error) {
	return m.AcceptDigested(now, s, nil)
}

// AcceptDigested is Accept with the tasks' digests already computed (by this
// node's router, with Digest): len(digests) == len(s.Tasks), or nil to
// compute them here.
func (m *Machine) AcceptDigested(now time.Time, s *messages.Submit, digests []task.Digest) ([]task.Record, *messages.Error) {
	if err := m.CheckBatch(s); err != nil {
		return nil, err
	}
	n := len(s.Tasks)
	if digests != nil && len(digests) != n {
		return nil, messages.Errorf(messages.CodeInternal, "%d digests for %d tasks", len(digests), n)
	}
	// Tasks not yet classified may all end in standby: they count too, so
	// the limit holds however fast submissions arrive.
	if m.standby+int64(n) > m.cfg.StandbyLimit {
		return nil, messages.Errorf(messages.CodeOverloaded, "%d tasks already wait in standby or on their way to it (limit %d); retry later", m.standby, m.cfg.StandbyLimit)
	}
	if m.inflight > 0 && m.inflight+int64(n) > m.cfg.MaxInflight {
		return nil, messages.Errorf(messages.CodeOverloaded, "%d tasks are waiting for the disk (limit %d); retry later", m.inflight, m.cfg.MaxInflight)
	}
	for i := range s.Tasks {
		if err := m.Check(i, &s.Tasks[i]); err != nil {
			return nil, err
		}
	}
	recs := make([]task.Record, n)
	ts := now.UnixNano()
	for i := range s.Tasks {
		t := &s.Tasks[i]
		max := t.MaxAttempts
		if max == 0 {
			max = m.cfg.DefaultMaxAttempts
		}
		size, pin := placementOf(t)
		recs[i] = task.Record{
			ID:            m.nextID,
			Type:          t.Type,
			Payload:       t.Payload,
			Priority:      t.Priority,
			Class:         m.cfg.ClassOf(t.Priority),
			Digest:        m.digestOf(digests, i, t),
			Requirements:  withPlacement(t),
			MaxAttempts:   max,
			SubmittedAt:   ts,
			Size:          size,
			Pin:           pin,
			TimeoutMillis: m.timeoutOf(t),
		}
		m.nextID++
	}
	m.inflight += int64(n)
	// Once durable these leave inflight and, if they wait, show up in the
	// pump's standby count, which the shell reads before every Accept.
	return recs, nil
}

// timeoutOf is t's run timeout in ms: its own, else its type's default.
func (m *Machine) timeoutOf(t *messages.TaskSpec) int64 {
	if t.TimeoutMillis > 0 {
		return t.TimeoutMillis
	}
	if d, ok := m.cfg.Timeouts[t.Type]; ok {
		return max(d.Milliseconds(), 1)
	}
	if m.cfg.DefaultTimeout > 0 {
		return max(m.cfg.DefaultTimeout.Milliseconds(), 1)
	}
	return 0
}

func (m *Machine) digestOf(digests []task.Digest, i int, t *messages.TaskSpec) task.Digest {
	if digests != nil {
		return digests[i]
	}
	return m.Digest(t.Type, t.Payload)
}

// placementOf is t's size and pin, parsed once here so that no later stage
// parses the requirements again: Size and Pin when set, else what the
// reserved requirement keys carry (a task re-submitted from the store). The
// task passed Check, so the reserved keys are well-formed.
func placementOf(t *messages.TaskSpec) (float64, string) {
	size, pin, _ := task.Placement(t.Requirements)
	if t.Size > 0 {
		size = t.Size
	}
	if t.Pin != "" {
		pin = t.Pin
	}
	return size, pin
}

// withPlacement returns t's requirements with its size and pin under the
// reserved keys (messages.ReqSize, ReqPin): the pin is a constraint placement
// matches and shows in a task's requirement shape, and a record re-submitted
// from the store (adoption) carries both in its requirements.
func withPlacement(t *messages.TaskSpec) map[string]string {
	if t.Size == 0 && t.Pin == "" {
		return t.Requirements
	}
	req := make(map[string]string, len(t.Requirements)+2)
	maps.Copy(req, t.Requirements)
	if t.Size > 0 {
		req[messages.ReqSize] = task.SizeRequirement(t.Size)
	}
	if t.Pin != "" {
		req[messages.ReqPin] = task.PinRequirement(t.Pin)
	}
	return req
}
