package flow

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

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
	rec      task.Record // the flow task (payload dropped once started)
	plan     *Plan
	prio     int32
	env      env
	steps    []stepState
	left     int
	template string
}

type stepRef struct {
	flow *instance
	step int
}

// Batch is one Submit of ready steps.
type Batch struct {
	Seq   uint64
	Tasks []messages.TaskSpec
}

// Effects are what the shell must do after a step of the machine.
type Effects struct {
	// Finished are flow tasks' terminal results, for dedupe to persist.
	Finished []task.Result
	// Credit returns the queue places of flow tasks taken from the pump
	// (flows wait in the runner, not in the dispatch queues).
	Credit [messages.NumClasses]int
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
	flows    map[uint64]*instance // running
	waiting  waitHeap             // not started yet: highest priority, then oldest, first
	queued   map[uint64]bool      // ids in waiting (false: cancelled, skip)
	dropped  int                  // false entries of queued
	byTask   map[uint64][]stepRef
	outbox   []stepRef
	batches  map[uint64][]stepRef
	seq      uint64
	plans    map[[32]byte]*Plan
	Counters Counters
}

// New returns an empty runner.
func New(cfg Config) *Machine {
	return &Machine{cfg: cfg, flows: map[uint64]*instance{}, queued: map[uint64]bool{}, byTask: map[uint64][]stepRef{},
		batches: map[uint64][]stepRef{}, plans: map[[32]byte]*Plan{}}
}

// Active is the number of flows running.
func (m *Machine) Active() int { return len(m.flows) }

// Waiting is the number of flows not started yet.
func (m *Machine) Waiting() int { return len(m.queued) - m.dropped }

// InFlight is the number of Submits not yet acknowledged.
func (m *Machine) InFlight() int { return len(m.batches) }

// Pending is the number of ready steps waiting for a Submit.
func (m *Machine) Pending() int { return len(m.outbox) }

// Enqueue takes flow tasks from dedupe (originals: a duplicate flow
// attached to its original there). Their queue places go back to the pump
// at once; the flows wait here and start as running flows finish.
func (m *Machine) Enqueue(now time.Time, tasks []task.Record) Effects {
	var fx Effects
	for _, t := range tasks {
		fx.Credit[t.Class]++
		if _, dup := m.queued[t.ID]; dup || m.flows[t.ID] != nil {
			continue
		}
		m.queued[t.ID] = true
		heap.Push(&m.waiting, t)
	}
	m.admit(now, &fx)
	return fx
}

// admit starts waiting flows while fewer than MaxActive run.
func (m *Machine) admit(now time.Time, fx *Effects) {
	for len(m.flows) < m.cfg.MaxActive && m.waiting.Len() > 0 {
		t := heap.Pop(&m.waiting).(task.Record)
		live := m.queued[t.ID]
		delete(m.queued, t.ID)
		if !live {
			m.dropped--
			continue // cancelled while waiting
		}
		in, err := m.start(t)
		if err != nil {
			m.Counters.Failed++
			fx.Finished = append(fx.Finished, result(now, &t, messages.StateDead, nil, err.Error()))
			continue
		}
		m.Counters.Started++
		m.flows[t.ID] = in
		for _, i := range in.plan.Order {
			if in.steps[i].depsLeft == 0 {
				if err := m.ready(in, i); err != nil {
					m.fail(now, in, err.Error(), fx)
					break
				}
			}
		}
	}
}

func result(now time.Time, t *task.Record, st messages.TaskState, out []byte, msg string) task.Result {
	return task.Result{ID: t.ID, Class: t.Class, Digest: t.Digest, State: st, Output: out, Error: msg,
		Attempts: 1, FinishedAt: now.UnixNano()}
}

func (m *Machine) start(t task.Record) (*instance, error) {
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
	t.Payload = nil
	in := &instance{rec: t, plan: plan, prio: p.Priority, steps: make([]stepState, len(plan.Steps)),
		left: len(plan.Steps), template: fmt.Sprintf("%s v%d", p.Template, p.Version)}
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
	m.outbox = append(m.outbox, stepRef{in, i})
	return nil
}

// live reports whether the step's flow still runs.
func (m *Machine) live(r stepRef) (*instance, bool) {
	return r.flow, m.flows[r.flow.rec.ID] == r.flow
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
func (m *Machine) Submitted(now time.Time, seq uint64, ids []uint64, err *messages.Error) Effects {
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
		if retry || (err.Index >= 0 && int(err.Index) != i) {
			m.resubmit(in, r) // not this step's fault: submit it again
			continue
		}
		m.fail(now, in, fmt.Sprintf("step %s: refused by intake: %s", in.plan.Steps[r.step].Name, err.Message), &fx)
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
func (m *Machine) Completed(now time.Time, results []task.Result) Effects {
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
			m.stepFinished(now, in, ref.step, r, &fx)
		}
	}
	m.admit(now, &fx)
	return fx
}

func (m *Machine) stepFinished(now time.Time, in *instance, i int, r *task.Result, fx *Effects) {
	st := &in.plan.Steps[i]
	if r.State != messages.StateDone {
		in.steps[i].phase = done // finished: not to be cancelled with the rest
	}
	switch r.State {
	case messages.StateDone:
	case messages.StateDead:
		m.Counters.StepsFailed++
		m.fail(now, in, fmt.Sprintf("step %s (task %d, type %s) failed after %d attempt(s): %s", st.Name, r.ID, st.Type, r.Attempts, r.Error), fx)
		return
	default:
		m.fail(now, in, fmt.Sprintf("step %s (task %d) was %s", st.Name, r.ID, r.State), fx)
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
				m.fail(now, in, err.Error(), fx)
				return
			}
		}
	}
	if in.left > 0 {
		return
	}
	out, err := in.plan.Result(&in.env)
	if err != nil {
		m.fail(now, in, err.Error(), fx)
		return
	}
	m.Counters.Done++
	fx.Finished = append(fx.Finished, result(now, &in.rec, messages.StateDone, out, ""))
	m.drop(in, nil)
}

// fail ends a flow with the error of its failed step and cancels its
// unfinished steps.
func (m *Machine) fail(now time.Time, in *instance, msg string, fx *Effects) {
	m.Counters.Failed++
	fx.Finished = append(fx.Finished, result(now, &in.rec, messages.StateDead, nil, "flow "+in.template+": "+msg))
	m.drop(in, &fx.Cancel)
}

// drop forgets a flow; with cancel set, its running steps are listed there
// (a shared step is only detached from this flow by the cancel: dedupe
// keeps it running for the other flows that wait for it).
func (m *Machine) drop(in *instance, cancel *[]uint64) {
	delete(m.flows, in.rec.ID)
	for i := range in.steps {
		if in.steps[i].phase == running && cancel != nil {
			*cancel = append(*cancel, in.steps[i].task)
		}
	}
}

// Cancel cancels flows (dedupe asks, for a client): a waiting flow is
// removed, a running one dropped with its unfinished steps cancelled. Ids
// the runner does not hold are ignored (they are other tasks).
func (m *Machine) Cancel(now time.Time, ids []uint64) Effects {
	var fx Effects
	for _, id := range ids {
		var rec *task.Record
		if in := m.flows[id]; in != nil {
			rec = &in.rec
			m.drop(in, &fx.Cancel)
		} else if m.queued[id] {
			m.queued[id] = false // skipped when popped
			m.dropped++
			for i := range m.waiting {
				if m.waiting[i].ID == id {
					rec = &m.waiting[i]
					break
				}
			}
		}
		if rec != nil {
			m.Counters.Cancelled++
			fx.Finished = append(fx.Finished, result(now, rec, messages.StateCancelled, nil, "flow cancelled by client"))
		}
	}
	m.admit(now, &fx)
	return fx
}

// Status describes a flow the runner holds: its steps while it runs.
func (m *Machine) Status(id uint64) (steps []messages.StepStatus, ok bool) {
	if m.queued[id] {
		return nil, true
	}
	in := m.flows[id]
	if in == nil {
		return nil, false
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
	return steps, true
}

// waitHeap orders waiting flows: higher priority first, then lower id.
type waitHeap []task.Record

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].Priority != h[j].Priority {
		return h[i].Priority > h[j].Priority
	}
	return h[i].ID < h[j].ID
}
func (h waitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)   { *h = append(*h, x.(task.Record)) }
func (h *waitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
