package flow

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

// flowTask builds the flow task a RunFlows would build.
func flowTask(t *testing.T, p *Plan, id uint64, input string, prio int32) task.Record {
	t.Helper()
	in, _, err := p.NormalizeInput([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&Payload{Template: p.Spec.Name, Version: 1, Spec: p.Canonical, Input: in, Priority: prio}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := Classes{HighMin: 70, LowMax: 29}
	class := messages.ClassNormal
	switch lo, _ := c.Range(prio); lo {
	case 70:
		class = messages.ClassHigh
	case 0:
		class = messages.ClassLow
	}
	return task.Record{ID: id, Type: messages.FlowTaskType, Payload: b, Priority: prio, Class: class, Digest: task.Digest{byte(id)}}
}

// sim plays intake, dedupe and executors around a machine: every Submit is
// acknowledged with fresh ids, identical steps share one execution (their
// results name the first as AliasOf), and a step's result is what run
// returns for its payload.
type sim struct {
	t      *testing.T
	m      *Machine
	nextID uint64
	byKey  map[string]uint64 // type+payload → original task id
	runs   map[string]int
	run    func(typ, payload string) (out string, err string)
	done   []task.Result
}

func newSim(t *testing.T, cfg Config) *sim {
	return &sim{t: t, m: New(cfg), nextID: 1000, byKey: map[string]uint64{}, runs: map[string]int{},
		run: func(typ, p string) (string, string) { return typ + "(" + p + ")", "" }}
}

func (s *sim) collect(fx Effects) { s.done = append(s.done, fx.Finished...) }

// round submits every ready step, acknowledges, executes and completes
// them; it returns how many steps were submitted.
func (s *sim) round() int {
	n := 0
	for _, b := range s.m.Flush() {
		ids := make([]uint64, len(b.Tasks))
		var results []task.Result
		for i, tk := range b.Tasks {
			s.nextID++
			ids[i] = s.nextID
			key := tk.Type + "|" + string(tk.Payload)
			r := task.Result{ID: ids[i], State: messages.StateDone, Attempts: 1}
			if orig, ok := s.byKey[key]; ok {
				r.AliasOf = orig
			} else {
				s.byKey[key] = ids[i]
				s.runs[key]++
			}
			out, err := s.run(tk.Type, string(tk.Payload))
			if err != "" {
				r.State, r.Error = messages.StateDead, err
			}
			r.Output = []byte(out)
			results = append(results, r)
		}
		n += len(b.Tasks)
		fx := s.m.Submitted(t0, b.Seq, ids, nil)
		if len(fx.Lookup) != len(ids) {
			s.t.Fatalf("lookup %d ids, want %d", len(fx.Lookup), len(ids))
		}
		s.collect(fx)
		s.collect(s.m.Completed(t0, results))
	}
	return n
}

const chain = `
name: chain
input: {x: string}
steps:
  - {name: a, type: up, args: "$input.x"}
  - {name: b, type: up, args: "b-${steps.a}"}
  - {name: c, type: up, args: "c-${steps.a}"}
  - {name: d, type: join, args: {b: $steps.b, c: $steps.c}}
output: {d: $steps.d, x: $input.x}
`

func TestMachineRunsADiamondInWaves(t *testing.T) {
	s := newSim(t, DefaultConfig())
	p := mustCompile(t, chain)
	fx := s.m.Enqueue(t0, []task.Record{flowTask(t, p, 1, `{"x": "k"}`, 50)})
	if fx.Credit[messages.ClassNormal] != 1 {
		t.Fatalf("credit %v: the flow task's queue place must go back to the pump", fx.Credit)
	}
	waves := []int{}
	for n := s.round(); n > 0; n = s.round() {
		waves = append(waves, n)
	}
	if !slices.Equal(waves, []int{1, 2, 1}) {
		t.Fatalf("steps submitted per wave %v, want [1 2 1] (a, then b and c, then d)", waves)
	}
	if len(s.done) != 1 || s.done[0].State != messages.StateDone {
		t.Fatalf("finished %+v", s.done)
	}
	want := `{"d":"join({\"b\":\"up(b-up(k))\",\"c\":\"up(c-up(k))\"})","x":"k"}`
	if r := s.done[0]; string(r.Output) != want || r.ID != 1 || r.Digest != (task.Digest{1}) {
		t.Fatalf("result %+v\nwant output %s", r, want)
	}
	if s.m.Active() != 0 {
		t.Fatalf("%d flows still held", s.m.Active())
	}
}

// Property: for random groups of flows sharing inputs, every flow finishes
// with the result a lone run would give, and every distinct step runs once.
func TestMachineSharedStepsRunOnce(t *testing.T) {
	p := mustCompile(t, chain)
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		s := newSim(t, Config{MaxActive: 1 + r.IntN(20), MaxFlows: 1000, MaxBatch: 1 + r.IntN(8), MaxSubmits: 1 + r.IntN(3), PlanCache: 4, Classes: Classes{70, 29}})
		n := 1 + r.IntN(40)
		var tasks []task.Record
		keys := map[uint64]string{}
		for i := range n {
			k := fmt.Sprintf("k%d", r.IntN(5))
			keys[uint64(i+1)] = k
			tasks = append(tasks, flowTask(t, p, uint64(i+1), `{"x":"`+k+`"}`, int32(r.IntN(101))))
		}
		s.collect(s.m.Enqueue(t0, tasks))
		for s.round() > 0 {
		}
		if len(s.done) != n {
			t.Fatalf("seed %d: %d of %d flows finished (active %d, waiting %d)", seed, len(s.done), n, s.m.Active(), s.m.Waiting())
		}
		for _, d := range s.done {
			k := keys[d.ID]
			want := fmt.Sprintf(`{"d":"join({\"b\":\"up(b-up(%s))\",\"c\":\"up(c-up(%s))\"})","x":"%s"}`, k, k, k)
			if d.State != messages.StateDone || string(d.Output) != want {
				t.Fatalf("seed %d flow %d: %v %s", seed, d.ID, d.State, d.Output)
			}
		}
		for key, c := range s.runs {
			if c != 1 {
				t.Fatalf("seed %d: %s ran %d times", seed, key, c)
			}
		}
	}
}

// A shared step that fails fails every flow waiting for it, with its error;
// their other running steps are cancelled.
func TestMachineFailedSharedStepFailsEveryWaitingFlow(t *testing.T) {
	p := mustCompile(t, `
name: f
input: {x: string, y: string}
steps:
  - {name: shared, type: src, args: $input.x}
  - {name: own, type: slow, args: $input.y}
  - {name: last, type: up, args: "${steps.shared}${steps.own}"}
`)
	m := New(DefaultConfig())
	m.Enqueue(t0, []task.Record{flowTask(t, p, 1, `{"x":"s","y":"1"}`, 50), flowTask(t, p, 2, `{"x":"s","y":"2"}`, 50)})
	bs := m.Flush()
	if len(bs) != 1 || len(bs[0].Tasks) != 4 {
		t.Fatalf("batches %+v", bs)
	}
	ids := []uint64{11, 12, 13, 14} // flow 1: shared 11, own 12; flow 2: shared 13, own 14
	m.Submitted(t0, bs[0].Seq, ids, nil)
	// The shared step's original (11) dies; dedupe gives its attached
	// duplicate (13) the same fate.
	fx := m.Completed(t0, []task.Result{
		{ID: 11, State: messages.StateDead, Error: "boom", Attempts: 3},
		{ID: 13, State: messages.StateDead, Error: "boom", Attempts: 3, AliasOf: 11},
	})
	if len(fx.Finished) != 2 {
		t.Fatalf("finished %+v", fx.Finished)
	}
	for _, r := range fx.Finished {
		if r.State != messages.StateDead || !strings.Contains(r.Error, "step shared") || !strings.Contains(r.Error, "after 3 attempt(s): boom") {
			t.Fatalf("flow %d: %v %q", r.ID, r.State, r.Error)
		}
	}
	if slices.Sort(fx.Cancel); !slices.Equal(fx.Cancel, []uint64{12, 14}) {
		t.Fatalf("cancelled %v, want the flows' own running steps [12 14]", fx.Cancel)
	}
	if m.Active() != 0 || m.Counters.Failed != 2 || m.Counters.StepsFailed != 2 {
		t.Fatalf("active %d, counters %+v", m.Active(), m.Counters)
	}
	// Their late results change nothing.
	if fx := m.Completed(t0, []task.Result{{ID: 12, State: messages.StateCancelled}}); len(fx.Finished) != 0 {
		t.Fatalf("late result finished %+v", fx.Finished)
	}
}

func TestMachineAdmitsByPriorityAndCancels(t *testing.T) {
	p := mustCompile(t, "name: one\nsteps: [{name: a, type: x, args: $input}]")
	m := New(Config{MaxActive: 1, MaxFlows: 10, MaxBatch: 10, MaxSubmits: 1, PlanCache: 2, Classes: Classes{70, 29}})
	m.Enqueue(t0, []task.Record{flowTask(t, p, 1, `"lo"`, 10)})
	m.Enqueue(t0, []task.Record{flowTask(t, p, 2, `"lo2"`, 10), flowTask(t, p, 3, `"hi"`, 90)})
	// Flow 1 arrived first and runs; 3 (high) is next, then 2.
	if m.Active() != 1 || m.Waiting() != 2 {
		t.Fatalf("active %d waiting %d", m.Active(), m.Waiting())
	}
	fx := m.Cancel(t0, []uint64{2, 99})
	if len(fx.Finished) != 1 || fx.Finished[0].ID != 2 || fx.Finished[0].State != messages.StateCancelled {
		t.Fatalf("cancel waiting: %+v", fx.Finished)
	}
	b := m.Flush()
	m.Submitted(t0, b[0].Seq, []uint64{50}, nil)
	fx = m.Cancel(t0, []uint64{1})
	if !slices.Equal(fx.Cancel, []uint64{50}) || len(fx.Finished) != 1 || fx.Finished[0].State != messages.StateCancelled {
		t.Fatalf("cancel running: %+v", fx)
	}
	if m.Active() != 1 || m.Waiting() != 0 {
		t.Fatalf("after cancelling 1: active %d waiting %d (3 must start)", m.Active(), m.Waiting())
	}
	b = m.Flush()
	if len(b) != 1 || string(b[0].Tasks[0].Payload) != "hi" || b[0].Tasks[0].Priority != 90 {
		t.Fatalf("next batch %+v, want the high flow's step at priority 90", b)
	}
	// The intake refuses as overloaded: the step is submitted again later.
	fx = m.Submitted(t0, b[0].Seq, nil, messages.Errorf(messages.CodeOverloaded, "full"))
	if !fx.RetryLater || m.Pending() != 1 {
		t.Fatalf("overload: %+v pending %d", fx, m.Pending())
	}
	// A refusal naming the step fails its flow.
	b = m.Flush()
	bad := messages.TaskErrorf(messages.CodePayloadTooLarge, 0, "payload too large")
	fx = m.Submitted(t0, b[0].Seq, nil, bad)
	if len(fx.Finished) != 1 || !strings.Contains(fx.Finished[0].Error, "step a: refused by intake: payload too large") {
		t.Fatalf("refused step: %+v", fx.Finished)
	}
}

func TestMachineFailsBadFlowTasks(t *testing.T) {
	m := New(DefaultConfig())
	bad := []task.Record{
		{ID: 1, Type: messages.FlowTaskType, Payload: []byte("junk")},
		{ID: 2, Type: messages.FlowTaskType, Payload: []byte(`{"template":"t","version":1,"spec":{"name":"t"},"input":null,"priority":50}`)},
	}
	fx := m.Enqueue(t0, bad)
	if len(fx.Finished) != 2 || fx.Finished[0].State != messages.StateDead || fx.Finished[1].State != messages.StateDead ||
		!strings.Contains(fx.Finished[1].Error, "has no steps") {
		t.Fatalf("bad flow tasks: %+v", fx.Finished)
	}
	// A mapping that cannot be evaluated fails the flow naming the step.
	q := mustCompile(t, "name: m\nsteps: [{name: a, type: x, args: $input.deep.field}]")
	fx = m.Enqueue(t0, []task.Record{flowTask(t, q, 3, `{"deep": 5}`, 50)})
	if len(fx.Finished) != 1 || !strings.Contains(fx.Finished[0].Error, "step a: args: $input.deep.field") {
		t.Fatalf("mapping error: %+v", fx.Finished)
	}
}
