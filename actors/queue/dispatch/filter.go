package dispatch

import (
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Dispatch is a chain in the Nomad scheduler's style: feasibility filters
// (this file) decide which executors can run a task, rankers (rank.go)
// order the executors that can, and a quota (quota.go) sizes each grant.
// Each stage is a small type with one job, named in Config, with a default.

// Filter is one feasibility check: can ex run t? A filter's answer may
// depend only on the task's type and requirements (the size aside) and on
// the executor's registration (id, types, capabilities) and state: the
// dispatcher caches it per executor, task type and requirement shape, and
// drops the cache when the executor registers again or changes state. A task is set aside
// as unplaceable when every registered executor is refused by some filter;
// the first filter in the chain to refuse an executor is named in the
// reason (like Nomad's FilterNode metrics).
type Filter interface {
	// Name appears in reasons ("type refused 2 (a, b)"): short, lower case.
	Name() string
	Feasible(t *task.Record, ex Executor) bool
}

// DefaultFilters is the chain used when Config.Filters is nil: type,
// capabilities, state, pin. An executor refused by several is reported
// under the first, so the order puts what the operator most likely got
// wrong (types and capabilities) before what is temporary (draining) or
// deliberate (a pin).
func DefaultFilters() []Filter {
	return []Filter{TypeFilter{}, CapabilityFilter{}, StateFilter{}, PinFilter{}}
}

// TypeFilter refuses an executor that does not serve the task's type (one
// registered without types serves every type).
type TypeFilter struct{}

func (TypeFilter) Name() string { return "type" }
func (TypeFilter) Feasible(t *task.Record, ex Executor) bool {
	return ex.x.types == nil || ex.x.types[t.Type]
}

// CapabilityFilter refuses an executor whose capabilities do not satisfy
// the task's requirements (task.Satisfies), the pin and size keys aside.
type CapabilityFilter struct{}

func (CapabilityFilter) Name() string { return "capabilities" }
func (CapabilityFilter) Feasible(t *task.Record, ex Executor) bool {
	for k, want := range t.Requirements {
		if k == messages.ReqSize || k == messages.ReqPin {
			continue
		}
		if !task.Satisfies(ex.x.caps[k], want) {
			return false
		}
	}
	return true
}

// StateFilter refuses a draining executor: it takes no new work. A
// sleeping executor can run the task: it is woken for it (evict.go).
type StateFilter struct{}

func (StateFilter) Name() string { return "state" }
func (StateFilter) Feasible(_ *task.Record, ex Executor) bool {
	return ex.x.state != messages.ExecDraining
}

// PinFilter refuses every executor but the one a pinned task names
// (requirement messages.ReqPin "=<executor id>").
type PinFilter struct{}

func (PinFilter) Name() string { return "pin" }
func (PinFilter) Feasible(t *task.Record, ex Executor) bool {
	want, ok := t.Requirements[messages.ReqPin]
	return !ok || want == "="+ex.x.id
}

// feasible runs the chain: the index of the first filter refusing ex, or
// -1 when none does.
func feasible(filters []Filter, t *task.Record, ex Executor) int {
	for i, f := range filters {
		if !f.Feasible(t, ex) {
			return i
		}
	}
	return -1
}

// refusals records, for each filter, the executors it refused t on (the
// first refusing filter only), in chain order and executor id order.
func refusals(filters []Filter, t *task.Record, execs []*executor) task.Refusals {
	var out task.Refusals
	at := make([]int, len(filters)) // filter → index in out, +1
	for _, ex := range execs {
		i := feasible(filters, t, Executor{ex})
		if i < 0 {
			continue
		}
		if at[i] == 0 {
			out = append(out, task.Refusal{Filter: filters[i].Name()})
			at[i] = len(out)
		}
		r := &out[at[i]-1]
		r.Executors = append(r.Executors, ex.id)
	}
	// Chain order, whatever order the executors met the filters in.
	sorted := make(task.Refusals, 0, len(out))
	for i := range filters {
		if at[i] > 0 {
			sorted = append(sorted, out[at[i]-1])
		}
	}
	return sorted
}
