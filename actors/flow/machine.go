package flow

import (
	"fmt"
	"time"

	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
)

// Config tunes the flow runner.
type Config struct {
	// MaxActive is about how many flows the runner holds at once (it
	// registers with MaxActive/2 slots; the dispatcher grants up to twice a
	// executor's slots). Default 20,000.
	MaxActive int
	// MaxBatch bounds the steps of one Submit (at most the intake's
	// MaxBatch). Default 4,096.
	MaxBatch int
	// MaxSubmits bounds the step Submits waiting for their acknowledgement;
	// ready steps wait in the runner meanwhile and go out together. Default 4.
	MaxSubmits int
	// FlowMaxAttempts is a flow task's MaxAttempts: how many times the flow
	// is started again after its runner lost it (a failed step fails the
	// flow at once). Default 3.
	FlowMaxAttempts int32
	// PlanCache bounds the compiled templates kept by their text. Default 1,024.
	PlanCache int
	// Classes are the intake's priority classes (set by the node).
	Classes Classes
	// Compile checks templates (known step types, retry bounds).
	Compile CompileOptions
	// TemplateDir, when set, is loaded at start (*.yaml, *.yml, *.json).
	TemplateDir string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MaxActive: 20_000, MaxBatch: 4096, MaxSubmits: 4, FlowMaxAttempts: 3, PlanCache: 1024,
		Classes: Classes{HighMin: 70, LowMax: 29}}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxActive < 2:
		return fmt.Errorf("flow: MaxActive must be >= 2, got %d", c.MaxActive)
	case c.MaxBatch <= 0:
		return fmt.Errorf("flow: MaxBatch must be > 0, got %d", c.MaxBatch)
	case c.MaxSubmits <= 0:
		return fmt.Errorf("flow: MaxSubmits must be > 0, got %d", c.MaxSubmits)
	case c.FlowMaxAttempts <= 0:
		return fmt.Errorf("flow: FlowMaxAttempts must be > 0, got %d", c.FlowMaxAttempts)
	case c.PlanCache <= 0:
		return fmt.Errorf("flow: PlanCache must be > 0, got %d", c.PlanCache)
	}
	return nil
}

type phase uint8

const (
	waiting    phase = iota // for its dependencies
	ready                   // in the outbox
	submitting              // in a Submit not yet acknowledged
	running                 // acknowledged: a task id, result awaited
	done
)

type stepState struct {
	phase    phase
	depsLeft int
	task     uint64
	shared   bool
	payload  []byte
}

type instance struct {
	id       uint64
	attempt  int32
	plan     *Plan
	prio     int32
	env      env
	steps    []stepState
	left     int
	started  int64
	template string
}

type stepRef struct {
	flow    uint64
	attempt int32
	step    int
}

// Batch is one Submit of ready steps.
type Batch struct {
	Seq   uint64
	Tasks []messages.TaskSpec
}

// Effects are what the shell must do after a step of the machine.
type Effects struct {
	// Reports are flow results for the dispatcher (the flow task's result).
	Reports []messages.Result
	// Cancel lists step tasks nobody waits for any more.
	Cancel []uint64
	// Lookup lists step tasks whose result may have become durable before
	// the runner learnt their ids: read them from the store.
	Lookup []uint64
	// RetryLater asks for a Flush after a pause (the intake refused a
	// Submit as overloaded).
	RetryLater bool
}

// Counters are cumulative.
type Counters struct {
	Started, Done, Failed, Cancelled                   int64
	StepsSubmitted, StepsRun, StepsShared, StepsFailed int64
}

// Machine is the flow runner's state: the flows it holds, their steps, and
// the Submits in flight. It does no I/O.
type Machine struct {
	cfg      Config
	flows    map[uint64]*instance
	byTask   map[uint64][]stepRef
	outbox   []stepRef
	batches  map[uint64][]stepRef
	seq      uint64
	plans    map[[32]byte]*Plan
	Counters Counters
}

// New returns an empty runner.
func New(cfg Config) *Machine {
	return &Machine{cfg: cfg, flows: map[uint64]*instance{}, byTask: map[uint64][]stepRef{},
		batches: map[uint64][]stepRef{}, plans: map[[32]byte]*Plan{}}
}

// Active is the number of flows held.
func (m *Machine) Active() int { return len(m.flows) }

// Held lists the flow tasks held (their leases to renew).
func (m *Machine) Held() []uint64 {
	out := make([]uint64, 0, len(m.flows))
	for id := range m.flows {
		out = append(out, id)
	}
	return out
}

// InFlight is the number of Submits not yet acknowledged.
func (m *Machine) InFlight() int { return len(m.batches) }

// Pending is the number of ready steps waiting for a Submit.
func (m *Machine) Pending() int { return len(m.outbox) }

// Grant starts the flow tasks the dispatcher leased to the runner. A task
// that is already held (its lease was lost and granted again) starts over:
// its finished steps are absorbed by dedupe.
func (m *Machine) Grant(now time.Time, tasks []messages.Task) Effects {
	var fx Effects
	for _, t := range tasks {
		if old := m.flows[t.ID]; old != nil {
			m.drop(old, nil)
		}
		in, err := m.start(now, t)
		if err != nil {
			m.Counters.Failed++
			fx.Reports = append(fx.Reports, messages.Result{TaskID: t.ID, Attempt: t.Attempt, Error: err.Error(), Permanent: true})
			continue
		}
		m.Counters.Started++
		m.flows[t.ID] = in
		for _, i := range in.plan.Order {
			if in.steps[i].depsLeft == 0 {
				if err := m.ready(in, i); err != nil {
					m.fail(in, err.Error(), &fx)
					break
				}
			}
		}
	}
	return fx
}

func (m *Machine) start(now time.Time, t messages.Task) (*instance, error) {
	p, err := DecodePayload(t.Payload)
	if err != nil {
		return nil, err
	}
	plan, err := m.plan(p.Spec)
	if err != nil {
		return nil, fmt.Errorf("flow template %s v%d: %w", p.Template, p.Version, err)
	}
	_, input, err := plan.NormalizeInput(p.Input)
	if err != nil {
		return nil, err
	}
	in := &instance{id: t.ID, attempt: t.Attempt, plan: plan, prio: p.Priority, steps: make([]stepState, len(plan.Steps)),
		left: len(plan.Steps), started: now.UnixNano(), template: fmt.Sprintf("%s v%d", p.Template, p.Version)}
	in.env = env{input: input, outputs: make([]any, len(plan.Steps))}
	for i := range plan.Steps {
		in.steps[i].depsLeft = len(plan.Steps[i].Deps)
	}
	return in, nil
}

// plan compiles a template text once (cached by its blake3 digest).
func (m *Machine) plan(spec []byte) (*Plan, error) {
	key := blake3.Sum256(spec)
	if p := m.plans[key]; p != nil {
		return p, nil
	}
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	p, err := Compile(s, CompileOptions{MaxAttempts: m.cfg.Compile.MaxAttempts}) // types were checked at registration
	if err != nil {
		return nil, err
	}
	if len(m.plans) >= m.cfg.PlanCache {
		for k := range m.plans { // forget one at random
			delete(m.plans, k)
			break
		}
	}
	m.plans[key] = p
	return p, nil
}

// ready builds step i's payload (its dependencies are done) and queues it.
func (m *Machine) ready(in *instance, i int) error {
	b, err := in.plan.Payload(i, &in.env)
	if err != nil {
		return err
	}
	in.steps[i].phase, in.steps[i].payload = ready, b
	m.outbox = append(m.outbox, stepRef{in.id, in.attempt, i})
	return nil
}

func (m *Machine) live(r stepRef) (*instance, bool) {
	in := m.flows[r.flow]
	return in, in != nil && in.attempt == r.attempt
}

// Flush takes ready steps into Submits while fewer than MaxSubmits wait.
func (m *Machine) Flush() []Batch {
	var out []Batch
	for len(m.outbox) > 0 && len(m.batches) < m.cfg.MaxSubmits {
		n := min(len(m.outbox), m.cfg.MaxBatch)
		refs := make([]stepRef, 0, n)
		tasks := make([]messages.TaskSpec, 0, n)
		k := 0
		for ; k < len(m.outbox) && len(refs) < n; k++ {
			r := m.outbox[k]
			in, ok := m.live(r)
			if !ok || in.steps[r.step].phase != ready {
				continue
			}
			st := &in.plan.Steps[r.step]
			ss := &in.steps[r.step]
			ss.phase = submitting
			refs = append(refs, r)
			tasks = append(tasks, messages.TaskSpec{Type: st.Type, Payload: ss.payload, Priority: m.cfg.Classes.StepPriority(in.prio, st),
				Requirements: st.Requirements, MaxAttempts: st.MaxAttempts})
			ss.payload = nil
		}
		m.outbox = m.outbox[k:]
		if len(refs) == 0 {
			continue
		}
		m.seq++
		m.batches[m.seq] = refs
		m.Counters.StepsSubmitted += int64(len(refs))
		out = append(out, Batch{Seq: m.seq, Tasks: tasks})
	}
	if len(m.outbox) == 0 {
		m.outbox = nil
	}
	return out
}

// Submitted takes the intake's answer to a Submit.
func (m *Machine) Submitted(seq uint64, ids []uint64, err *messages.Error) Effects {
	var fx Effects
	refs, ok := m.batches[seq]
	if !ok {
		return fx
	}
	delete(m.batches, seq)
	if err == nil && len(ids) != len(refs) {
		err = messages.Errorf(messages.CodeInternal, "intake acknowledged %d of %d steps", len(ids), len(refs))
	}
	if err == nil {
		for i, r := range refs {
			in, ok := m.live(r)
			if !ok || in.steps[r.step].phase != submitting {
				fx.Cancel = append(fx.Cancel, ids[i]) // its flow is gone
				continue
			}
			in.steps[r.step].phase, in.steps[r.step].task = running, ids[i]
			m.byTask[ids[i]] = append(m.byTask[ids[i]], r)
			fx.Lookup = append(fx.Lookup, ids[i])
		}
		return fx
	}
	retry := err.Code == messages.CodeOverloaded || err.Code == messages.CodeUnavailable
	for i, r := range refs {
		in, ok := m.live(r)
		if !ok {
			continue
		}
		switch {
		case retry || (err.Index >= 0 && int(err.Index) != i):
			// Not this step's fault: submit it again.
			m.resubmit(in, r)
		default:
			m.fail(in, fmt.Sprintf("step %s: refused by intake: %s", in.plan.Steps[r.step].Name, err.Message), &fx)
		}
	}
	fx.RetryLater = retry
	return fx
}

// resubmit rebuilds a step's payload and queues it again.
func (m *Machine) resubmit(in *instance, r stepRef) {
	b, err := in.plan.Payload(r.step, &in.env)
	if err != nil {
		return // built once already: cannot fail now
	}
	in.steps[r.step].phase, in.steps[r.step].payload = ready, b
	m.outbox = append(m.outbox, r)
}

// Completed takes durable results (every task's: those of steps matter).
func (m *Machine) Completed(results []store.ResultRecord) Effects {
	var fx Effects
	for k := range results {
		r := &results[k]
		refs, ok := m.byTask[r.ID]
		if !ok {
			continue
		}
		delete(m.byTask, r.ID)
		for _, ref := range refs {
			in, ok := m.live(ref)
			if !ok || in.steps[ref.step].phase != running || in.steps[ref.step].task != r.ID {
				continue
			}
			m.stepFinished(in, ref.step, r, &fx)
		}
	}
	return fx
}

func (m *Machine) stepFinished(in *instance, i int, r *store.ResultRecord, fx *Effects) {
	st := &in.plan.Steps[i]
	switch r.State {
	case messages.StateDone:
	case messages.StateDead:
		m.Counters.StepsFailed++
		m.fail(in, fmt.Sprintf("step %s (task %d, type %s) failed after %d attempt(s): %s", st.Name, r.ID, st.Type, r.Attempts, r.Error), fx)
		return
	default:
		m.fail(in, fmt.Sprintf("step %s (task %d) was %s", st.Name, r.ID, r.State), fx)
		return
	}
	ss := &in.steps[i]
	ss.phase, ss.shared = done, r.AliasOf != 0
	if ss.shared {
		m.Counters.StepsShared++
	} else {
		m.Counters.StepsRun++
	}
	in.env.outputs[i] = parseOutput(r.Output)
	in.left--
	for _, d := range st.Dependents {
		if in.steps[d].depsLeft--; in.steps[d].depsLeft == 0 {
			if err := m.ready(in, d); err != nil {
				m.fail(in, err.Error(), fx)
				return
			}
		}
	}
	if in.left > 0 {
		return
	}
	out, err := in.plan.Result(&in.env)
	if err != nil {
		m.fail(in, err.Error(), fx)
		return
	}
	m.Counters.Done++
	fx.Reports = append(fx.Reports, messages.Result{TaskID: in.id, Attempt: in.attempt, OK: true, Output: out})
	m.drop(in, nil)
}

// fail ends a flow with a permanent error and cancels its unfinished steps.
func (m *Machine) fail(in *instance, msg string, fx *Effects) {
	m.Counters.Failed++
	fx.Reports = append(fx.Reports, messages.Result{TaskID: in.id, Attempt: in.attempt, Error: "flow " + in.template + ": " + msg, Permanent: true})
	m.drop(in, &fx.Cancel)
}

// drop forgets a flow; with cancel set, its running steps are listed there
// (a shared step is only detached from this flow by the cancel: dedupe
// keeps it running for the other flows that wait for it).
func (m *Machine) drop(in *instance, cancel *[]uint64) {
	delete(m.flows, in.id)
	for i := range in.steps {
		if in.steps[i].phase == running && cancel != nil {
			*cancel = append(*cancel, in.steps[i].task)
		}
	}
}

// Revoked drops flows whose leases the dispatcher revoked (the flow was
// cancelled) and cancels their unfinished steps.
func (m *Machine) Revoked(ids []uint64) Effects {
	var fx Effects
	for _, id := range ids {
		if in := m.flows[id]; in != nil {
			m.Counters.Cancelled++
			m.drop(in, &fx.Cancel)
		}
	}
	return fx
}

// Reset forgets every flow (the runner registered again: the dispatcher
// requeued the flows it held and will grant them again).
func (m *Machine) Reset() {
	clear(m.flows)
	clear(m.byTask)
	m.outbox = nil
}

// Status describes a held flow's steps.
func (m *Machine) Status(id uint64) (template string, steps []messages.StepStatus, ok bool) {
	in := m.flows[id]
	if in == nil {
		return "", nil, false
	}
	steps = make([]messages.StepStatus, len(in.steps))
	for i := range in.steps {
		st := &in.plan.Steps[i]
		s := messages.StepStatus{Name: st.Name, Type: st.Type, TaskID: in.steps[i].task, Shared: in.steps[i].shared}
		switch in.steps[i].phase {
		case ready, submitting:
			s.State = messages.StateStandby
		case running:
			s.State = messages.StateQueued
		case done:
			s.State = messages.StateDone
		}
		steps[i] = s
	}
	return in.template, steps, true
}
