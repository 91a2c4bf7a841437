package planner

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shoalrt/shoal/messages"
)

// The seed's example: tasks 20, 40, 40, 60 on servers with backlogs 10, 40
// and 60 finish by 100.
func TestSeedExample(t *testing.T) {
	tasks := []Task{{"a", 20}, {"b", 40}, {"c", 40}, {"d", 60}}
	execs := []Executor{{"s1", 10}, {"s2", 40}, {"s3", 60}}
	p, err := Solve(tasks, execs)
	if err != nil {
		t.Fatal(err)
	}
	if p.Makespan != 100 {
		t.Fatalf("makespan %v, want 100; plan %+v", p.Makespan, p)
	}
	if opt := bruteForce(tasks, execs); opt != 100 {
		t.Fatalf("brute force %v", opt)
	}
	checkPlan(t, tasks, execs, p)
}

func checkPlan(t *testing.T, tasks []Task, execs []Executor, p Plan) {
	t.Helper()
	finish := map[string]float64{}
	for _, e := range execs {
		finish[e.ID] = e.Backlog
	}
	if len(p.Assignments) != len(tasks) {
		t.Fatalf("%d assignments for %d tasks", len(p.Assignments), len(tasks))
	}
	for i, a := range p.Assignments {
		if a.Task != tasks[i].ID {
			t.Fatalf("assignment %d is for %s, want %s", i, a.Task, tasks[i].ID)
		}
		if _, ok := finish[a.Executor]; !ok {
			t.Fatalf("unknown executor %s", a.Executor)
		}
		finish[a.Executor] += tasks[i].Size
		if a.Finish-a.Start != tasks[i].Size {
			t.Fatalf("task %s runs %v, size %v", a.Task, a.Finish-a.Start, tasks[i].Size)
		}
	}
	ms := 0.0
	for id, f := range finish {
		if math.Abs(f-p.Finish[id]) > 1e-6 {
			t.Fatalf("executor %s finishes %v, plan says %v", id, f, p.Finish[id])
		}
		ms = max(ms, f)
	}
	if math.Abs(ms-p.Makespan) > 1e-6 || p.Makespan > p.LPTMakespan+1e-9 {
		t.Fatalf("makespan %v, computed %v, LPT %v", p.Makespan, ms, p.LPTMakespan)
	}
}

// bruteForce is the optimal makespan by trying every assignment.
func bruteForce(tasks []Task, execs []Executor) float64 {
	load := make([]float64, len(execs))
	for j, e := range execs {
		load[j] = e.Backlog
	}
	best := math.Inf(1)
	var rec func(i int)
	rec = func(i int) {
		if i == len(tasks) {
			m := 0.0
			for _, l := range load {
				m = max(m, l)
			}
			best = min(best, m)
			return
		}
		for j := range load {
			load[j] += tasks[i].Size
			rec(i + 1)
			load[j] -= tasks[i].Size
		}
	}
	rec(0)
	return best
}

// Property: on small random inputs the plan is valid, never worse than
// LPT, within LPT's 3/2 bound of the optimum, and locally optimal (no
// single move from the last-finishing executor helps).
func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	exact, total := 0, 0
	for n := range 400 {
		tasks := make([]Task, 1+rng.IntN(7))
		for i := range tasks {
			tasks[i] = Task{fmt.Sprint("t", i), float64(1 + rng.IntN(60))}
		}
		execs := make([]Executor, 1+rng.IntN(3))
		for j := range execs {
			execs[j] = Executor{fmt.Sprint("e", j), float64(rng.IntN(50))}
		}
		p, err := Solve(tasks, execs)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, tasks, execs, p)
		opt := bruteForce(tasks, execs)
		if p.Makespan < opt-1e-9 || p.Makespan > 1.5*opt+1e-9 {
			t.Fatalf("case %d: makespan %v, optimum %v; tasks %v execs %v", n, p.Makespan, opt, tasks, execs)
		}
		for i, a := range p.Assignments {
			if p.Finish[a.Executor] != p.Makespan {
				continue
			}
			for _, e := range execs {
				if e.ID != a.Executor && p.Finish[e.ID]+tasks[i].Size < p.Makespan-1e-9 && p.Finish[a.Executor]-tasks[i].Size < p.Makespan-1e-9 {
					t.Fatalf("case %d: moving %s to %s would help; plan %+v", n, a.Task, e.ID, p)
				}
			}
		}
		total++
		if p.Makespan == opt {
			exact++
		}
	}
	t.Logf("optimal in %d of %d cases", exact, total)
	if exact < total*8/10 {
		t.Fatalf("optimal in only %d of %d small cases", exact, total)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		tasks []Task
		execs []Executor
	}{
		{nil, nil},
		{nil, []Executor{{"a", 0}, {"a", 1}}},
		{nil, []Executor{{"a", -1}}},
		{[]Task{{"x", math.NaN()}}, []Executor{{"a", 0}}},
		{[]Task{{"x", -2}}, []Executor{{"a", 0}}},
	} {
		if _, err := Solve(c.tasks, c.execs); !errors.Is(err, ErrInput) {
			t.Errorf("%v %v: err %v", c.tasks, c.execs, err)
		}
	}
}

// Planned work goes only to executors that take work: a failed or
// restarting executor (backlog 0, the planner's first choice otherwise), a
// draining one and another node's stealer are left out.
func TestFromStatusKeepsExecutorsThatTakeWork(t *testing.T) {
	st := []messages.ExecutorStatus{
		{ID: "a", State: messages.ExecActive, BacklogMillis: 5000},
		{ID: "b", State: messages.ExecSleeping},
		{ID: "c"}, // older peers send no state: active
		{ID: "d", State: messages.ExecFailed},
		{ID: "e", State: messages.ExecRestarting},
		{ID: "f", State: messages.ExecDraining},
		{ID: messages.StealExecutorPrefix + "n2", State: messages.ExecActive},
	}
	var ids []string
	for _, e := range FromStatus(st) {
		ids = append(ids, e.ID)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(ids, want) {
		t.Fatalf("FromStatus = %v, want %v", ids, want)
	}
	if got := FromStatus(st)[0].Backlog; got != 5 {
		t.Fatalf("backlog of a = %v s, want 5", got)
	}
}
