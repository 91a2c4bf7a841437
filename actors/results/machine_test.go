package results

import (
	"math/rand/v2"
	"testing"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

func out(id uint64, s messages.TaskState) messages.Outcome {
	return messages.Outcome{TaskID: id, State: s}
}

func res(id uint64, s messages.TaskState, output string) task.Result {
	return task.Result{ID: id, State: s, Output: []byte(output), Attempts: 1}
}

func TestWaitImmediate(t *testing.T) {
	m := New()
	cases := map[string][]messages.Outcome{
		"all terminal": {out(1, messages.StateDone), out(2, messages.StateDead), out(3, messages.StateCancelled)},
		"unknown ids":  {out(4, messages.StateUnknown), out(1, messages.StateDone)},
		"only unknown": {out(5, messages.StateUnknown)},
	}
	for name, outcomes := range cases {
		w := m.Wait("tok", outcomes, 100)
		if w == nil {
			t.Fatalf("%s: wait did not complete at once", name)
		}
		if w.Token != "tok" || len(w.Outcomes) != len(outcomes) || &w.Outcomes[0] != &outcomes[0] {
			t.Fatalf("%s: waiter %+v", name, w)
		}
	}
	if m.Pending() != 0 || len(m.byTask) != 0 {
		t.Fatalf("immediate waits left state: %d pending, %d tasks", m.Pending(), len(m.byTask))
	}
}

func TestWaitCompletes(t *testing.T) {
	m := New()
	w := m.Wait("a", []messages.Outcome{out(1, messages.StateQueued), out(2, messages.StateDone), out(3, messages.StateAttached), out(9, messages.StateUnknown)}, 100)
	if w != nil {
		t.Fatal("completed with live tasks")
	}
	if m.Pending() != 1 {
		t.Fatalf("pending %d", m.Pending())
	}
	if done := m.Completed([]task.Result{res(1, messages.StateDone, "one"), res(7, messages.StateDone, "")}); len(done) != 0 {
		t.Fatalf("completed with task 3 still attached: %v", done)
	}
	done := m.Completed([]task.Result{res(3, messages.StateDead, "")})
	if len(done) != 1 || done[0].Token != "a" {
		t.Fatalf("done %v", done)
	}
	got := done[0].Outcomes
	if got[0].State != messages.StateDone || string(got[0].Output) != "one" || got[1].State != messages.StateDone ||
		got[2].State != messages.StateDead || got[3].State != messages.StateUnknown {
		t.Fatalf("outcomes %+v", got)
	}
	if m.Pending() != 0 || len(m.byTask) != 0 {
		t.Fatalf("state left: %d pending, %v", m.Pending(), m.byTask)
	}
	// A later result of the same task completes nothing.
	if done := m.Completed([]task.Result{res(3, messages.StateDead, "")}); len(done) != 0 {
		t.Fatalf("completed twice: %v", done)
	}
}

func TestManyWaitersOneTask(t *testing.T) {
	m := New()
	m.Wait("a", []messages.Outcome{out(1, messages.StateQueued)}, 100)
	m.Wait("b", []messages.Outcome{out(1, messages.StateLeased), out(2, messages.StateQueued)}, 100)
	done := m.Completed([]task.Result{res(1, messages.StateDone, "x")})
	if len(done) != 1 || done[0].Token != "a" {
		t.Fatalf("done %v", done)
	}
	done = m.Completed([]task.Result{res(2, messages.StateDone, "y")})
	if len(done) != 1 || done[0].Token != "b" || string(done[0].Outcomes[0].Output) != "x" {
		t.Fatalf("done %+v", done)
	}
}

func TestDuplicateIDsInOneWait(t *testing.T) {
	m := New()
	m.Wait("a", []messages.Outcome{out(1, messages.StateQueued), out(1, messages.StateQueued)}, 100)
	done := m.Completed([]task.Result{res(1, messages.StateDone, "x")})
	if len(done) != 1 || done[0].Outcomes[0].State != messages.StateDone || done[0].Outcomes[1].State != messages.StateDone {
		t.Fatalf("done %+v", done)
	}
}

func TestExpireReturnsPartial(t *testing.T) {
	m := New()
	m.Wait("early", []messages.Outcome{out(1, messages.StateQueued), out(2, messages.StateQueued)}, 100)
	m.Wait("late", []messages.Outcome{out(1, messages.StateQueued)}, 200)
	m.Completed([]task.Result{res(2, messages.StateDone, "two")})
	if got := m.Expire(99); len(got) != 0 {
		t.Fatalf("expired before the deadline: %v", got)
	}
	got := m.Expire(100)
	if len(got) != 1 || got[0].Token != "early" {
		t.Fatalf("expired %v", got)
	}
	o := got[0].Outcomes
	if o[0].State != messages.StateQueued || o[1].State != messages.StateDone || string(o[1].Output) != "two" {
		t.Fatalf("partial outcomes %+v", o)
	}
	if m.Pending() != 1 {
		t.Fatalf("pending %d", m.Pending())
	}
	// The expired waiter is unlinked: task 1's result completes only "late".
	done := m.Completed([]task.Result{res(1, messages.StateDone, "one")})
	if len(done) != 1 || done[0].Token != "late" {
		t.Fatalf("done %v", done)
	}
	if len(m.byTask) != 0 || m.Pending() != 0 {
		t.Fatalf("state left: %v", m.byTask)
	}
	if got := m.Expire(1 << 62); len(got) != 0 {
		t.Fatalf("completed waiter expired: %v", got)
	}
}

// Property: over random waits, results and expiries, every waiter is
// answered exactly once, answered complete only when all its known tasks are
// terminal, and the hub keeps nothing afterwards.
func TestWaitProperty(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := New()
		terminal := map[uint64]bool{}
		answered := map[*Waiter]int{}
		var all []*Waiter
		now := int64(0)
		answer := func(ws []*Waiter, complete bool) {
			for _, w := range ws {
				answered[w]++
				if answered[w] > 1 {
					t.Fatalf("seed %d: waiter answered twice", seed)
				}
				if complete {
					for _, o := range w.Outcomes {
						if o.State != messages.StateUnknown && !o.State.Terminal() {
							t.Fatalf("seed %d: answered complete with %+v", seed, o)
						}
					}
				}
			}
		}
		for range 300 {
			now += int64(rng.IntN(10))
			switch rng.IntN(3) {
			case 0:
				var os []messages.Outcome
				for range 1 + rng.IntN(4) {
					id := uint64(1 + rng.IntN(30))
					st := messages.StateQueued
					switch {
					case terminal[id]:
						st = messages.StateDone
					case id > 25:
						st = messages.StateUnknown
					}
					os = append(os, out(id, st))
				}
				w := m.Wait(nil, os, now+int64(rng.IntN(50)))
				if w != nil {
					answer([]*Waiter{w}, true)
				} else {
					all = append(all, m.waitersFor(os)...)
				}
			case 1:
				id := uint64(1 + rng.IntN(25))
				if !terminal[id] {
					terminal[id] = true
					answer(m.Completed([]task.Result{res(id, messages.StateDone, "")}), true)
				}
			default:
				answer(m.Expire(now), false)
			}
		}
		answer(m.Expire(1<<62), false)
		for _, w := range all {
			if answered[w] != 1 {
				t.Fatalf("seed %d: waiter answered %d times", seed, answered[w])
			}
		}
		if m.Pending() != 0 || len(m.byTask) != 0 {
			t.Fatalf("seed %d: %d pending, %d task links left", seed, m.Pending(), len(m.byTask))
		}
	}
}

// waitersFor finds the pending waiters registered over os (test helper).
func (m *Machine) waitersFor(os []messages.Outcome) []*Waiter {
	var out []*Waiter
	for w := range m.waiters {
		if len(w.Outcomes) == len(os) && &w.Outcomes[0] == &os[0] {
			out = append(out, w)
		}
	}
	return out
}

// Resolve settles a registered wait from the store's answer, but never
// overrides a completion that arrived while the store was being read.
func TestResolve(t *testing.T) {
	m := New()
	w := m.Open("a", []messages.Outcome{out(1, messages.StateQueued), out(2, messages.StateQueued), out(3, messages.StateQueued)}, 100)
	if done := m.Completed([]task.Result{res(1, messages.StateDone, "fresh")}); len(done) != 0 {
		t.Fatal("completed early")
	}
	found := []messages.Outcome{out(1, messages.StateQueued), {TaskID: 2, State: messages.StateDone, Output: []byte("stored")}, out(3, messages.StateUnknown)}
	if m.Resolve(w, found, 50) != Complete {
		t.Fatal("not complete after resolve")
	}
	if string(w.Outcomes[0].Output) != "fresh" || string(w.Outcomes[1].Output) != "stored" || w.Outcomes[2].State != messages.StateUnknown {
		t.Fatalf("outcomes %+v", w.Outcomes)
	}
	if m.Pending() != 0 || len(m.byTask) != 0 {
		t.Fatalf("left state: %d pending, %d tasks", m.Pending(), len(m.byTask))
	}
	// Still running after the lookup: stays registered until completion.
	w = m.Open("b", []messages.Outcome{out(4, messages.StateQueued)}, 100)
	if m.Resolve(w, []messages.Outcome{out(4, messages.StateQueued)}, 50) != StillOpen {
		t.Fatal("resolved a task that is still running")
	}
	if done := m.Completed([]task.Result{res(4, messages.StateDone, "")}); len(done) != 1 {
		t.Fatal("completion did not answer")
	}
	// Cancelled before the lookup came back: ignored.
	w = m.Open("c", []messages.Outcome{out(5, messages.StateQueued)}, 100)
	m.Cancel(w)
	if m.Resolve(w, []messages.Outcome{out(5, messages.StateUnknown)}, 50) != StillOpen {
		t.Fatal("resolved a cancelled wait")
	}
}

// A wait's deadline never answers it with placeholders (issue 15): a
// timeout-0 wait is past its deadline when it opens, yet it is answered
// only once the store has said what each task is.
func TestDeadlineWaitsForLookup(t *testing.T) {
	m := New()
	done := m.Open("done", []messages.Outcome{out(1, messages.StateQueued)}, 100)
	unknown := m.Open("unknown", []messages.Outcome{out(2, messages.StateQueued)}, 100)
	running := m.Open("running", []messages.Outcome{out(3, messages.StateQueued), out(4, messages.StateQueued)}, 100)
	if got := m.Expire(200); len(got) != 0 {
		t.Fatalf("expired %d waits before their lookups", len(got))
	}
	if r := m.Resolve(done, []messages.Outcome{{TaskID: 1, State: messages.StateDone, Attempts: 1}}, 200); r != Complete || done.Outcomes[0].Attempts != 1 {
		t.Fatalf("done: %v %+v", r, done.Outcomes)
	}
	if r := m.Resolve(unknown, []messages.Outcome{out(2, messages.StateUnknown)}, 200); r != Complete || unknown.Outcomes[0].State != messages.StateUnknown {
		t.Fatalf("unknown: %v %+v", r, unknown.Outcomes)
	}
	r := m.Resolve(running, []messages.Outcome{{TaskID: 3, State: messages.StateLeased}, {TaskID: 4, State: messages.StateDone}}, 200)
	if r != Expired || running.Outcomes[0].State != messages.StateLeased || running.Outcomes[1].State != messages.StateDone {
		t.Fatalf("running past its deadline: %v %+v", r, running.Outcomes)
	}
	if m.Pending() != 0 || len(m.byTask) != 0 {
		t.Fatalf("left state: %d pending, %d tasks", m.Pending(), len(m.byTask))
	}
	// Looked up before its deadline: the tick answers it then.
	w := m.Open("later", []messages.Outcome{out(5, messages.StateQueued)}, 300)
	if m.Resolve(w, []messages.Outcome{{TaskID: 5, State: messages.StateLeased}}, 200) != StillOpen {
		t.Fatal("answered before the deadline")
	}
	if got := m.Expire(300); len(got) != 1 || got[0].Outcomes[0].State != messages.StateLeased {
		t.Fatalf("expire after lookup: %+v", got)
	}
}
