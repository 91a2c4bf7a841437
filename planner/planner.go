// Package planner assigns a batch of sized tasks to executors with
// backlogs so that the makespan (the latest finish) is small (S1.3, S1.4).
//
// It runs longest-processing-time first (each task, largest first, to the
// executor that would finish it earliest, counting its backlog), then local
// improvement: a task moves from the executor that finishes last to another,
// or two tasks swap between it and another, whenever that lowers the later
// of the two finishes, until no move or swap helps (or MaxRounds). LPT alone
// is within 3/2 of the optimum with backlogs (Lee, 1991); the local search
// often closes the rest on small batches. It is a pure function.
package planner

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/shoalrt/shoal/messages"
)

// Task is one task to place. Size is its run time, in the same unit as the
// executors' backlogs.
type Task struct {
	ID   string  `json:"id"`
	Size float64 `json:"size"`
}

// Executor is one executor and the work it already holds.
type Executor struct {
	ID      string  `json:"id"`
	Backlog float64 `json:"backlog"`
}

// Assignment places one task.
type Assignment struct {
	Task     string  `json:"task"`
	Executor string  `json:"executor"`
	Start    float64 `json:"start"`
	Finish   float64 `json:"finish"`
}

// Plan is the planner's answer.
type Plan struct {
	Assignments []Assignment `json:"assignments"` // in input task order
	// Finish is each executor's finish (backlog plus its tasks), by id.
	Finish   map[string]float64 `json:"finish"`
	Makespan float64            `json:"makespan"`
	// LPTMakespan is the makespan before local improvement.
	LPTMakespan float64 `json:"lpt_makespan"`
}

// MaxRounds bounds local improvement.
const MaxRounds = 10_000

// ErrInput is returned for input the planner cannot use.
var ErrInput = errors.New("planner: bad input")

// Validate checks the input.
func Validate(tasks []Task, execs []Executor) error {
	if len(execs) == 0 {
		return fmt.Errorf("%w: no executors", ErrInput)
	}
	seen := map[string]bool{}
	for i, e := range execs {
		if e.ID == "" || seen[e.ID] {
			return fmt.Errorf("%w: executor %d: id %q is empty or repeated", ErrInput, i, e.ID)
		}
		seen[e.ID] = true
		if !finite(e.Backlog) || e.Backlog < 0 {
			return fmt.Errorf("%w: executor %s: backlog %v must be a finite number >= 0", ErrInput, e.ID, e.Backlog)
		}
	}
	for i, t := range tasks {
		if !finite(t.Size) || t.Size < 0 {
			return fmt.Errorf("%w: task %d (%s): size %v must be a finite number >= 0", ErrInput, i, t.ID, t.Size)
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Solve plans tasks onto execs.
func Solve(tasks []Task, execs []Executor) (Plan, error) {
	if err := Validate(tasks, execs); err != nil {
		return Plan{}, err
	}
	load := make([]float64, len(execs))
	for j, e := range execs {
		load[j] = e.Backlog
	}
	on := make([]int, len(tasks)) // task → executor index
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	// Largest first; ties by input order, so the plan is deterministic.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tasks[b].Size, tasks[a].Size) })
	for _, i := range order {
		best := 0
		for j := range load {
			if load[j]+tasks[i].Size < load[best]+tasks[i].Size {
				best = j
			}
		}
		on[i] = best
		load[best] += tasks[i].Size
	}
	lpt := slices.Max(load)
	improve(tasks, on, load)

	p := Plan{Finish: map[string]float64{}, LPTMakespan: lpt, Makespan: slices.Max(load)}
	for j, e := range execs {
		p.Finish[e.ID] = load[j]
	}
	// Start times: each executor runs its tasks largest first after its backlog.
	next := make([]float64, len(execs))
	for j, e := range execs {
		next[j] = e.Backlog
	}
	p.Assignments = make([]Assignment, len(tasks))
	for _, i := range order {
		j := on[i]
		p.Assignments[i] = Assignment{Task: tasks[i].ID, Executor: execs[j].ID, Start: next[j], Finish: next[j] + tasks[i].Size}
		next[j] += tasks[i].Size
	}
	return p, nil
}

// improve applies improving moves and swaps from the executor that finishes
// last until none helps.
func improve(tasks []Task, on []int, load []float64) {
	const eps = 1e-9
	for range MaxRounds {
		top := 0
		for j := range load {
			if load[j] > load[top] {
				top = j
			}
		}
		if !moveOrSwap(tasks, on, load, top, eps) {
			return
		}
	}
}

func moveOrSwap(tasks []Task, on []int, load []float64, top int, eps float64) bool {
	for i := range tasks {
		if on[i] != top {
			continue
		}
		// Move i to j.
		for j := range load {
			if j == top {
				continue
			}
			if max(load[top]-tasks[i].Size, load[j]+tasks[i].Size) < load[top]-eps {
				load[top] -= tasks[i].Size
				load[j] += tasks[i].Size
				on[i] = j
				return true
			}
		}
		// Swap i with a smaller k elsewhere.
		for k := range tasks {
			j := on[k]
			d := tasks[i].Size - tasks[k].Size
			if j == top || d <= eps {
				continue
			}
			if max(load[top]-d, load[j]+d) < load[top]-eps {
				load[top] -= d
				load[j] += d
				on[i], on[k] = j, top
				return true
			}
		}
	}
	return false
}

// FromStatus lists the executors of a node's status that can take planned
// work, with their backlogs: active or sleeping ones (not draining, failed
// or restarting) and not another node's work stealer.
func FromStatus(execs []messages.ExecutorStatus) []Executor {
	var out []Executor
	for _, e := range execs {
		switch {
		case messages.IsStealExecutor(e.ID):
		case e.State != "" && e.State != messages.ExecActive && e.State != messages.ExecSleeping:
		default:
			out = append(out, Executor{ID: e.ID, Backlog: float64(e.BacklogMillis) / 1000})
		}
	}
	return out
}
