package dispatch

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// simExec is what one executor holds, as the executor itself sees it.
type simExec struct {
	id    string
	slots int32
	types []string
	caps  map[string]string
	held  map[uint64]int32 // task → attempt
	alive bool             // registered (as far as it knows)
	sleep bool             // told Grant{Sleep}: heartbeats only until woken
	inc   uint64           // incarnation of its current run
}

// dispatchSim drives a Machine with random messages and checks, after every
// step, the invariants of the queue and its credits.
type dispatchSim struct {
	// arriving: the arrival phase, when check also proves every queued
	// task runnable by some executor that takes work (costly per step).
	arriving bool
	t        *testing.T
	rng      *rand.Rand
	m        *Machine
	now      time.Time

	nextID   uint64
	tasks    map[uint64]task.Record
	execs    []*simExec
	enqueued [messages.NumClasses]int // pumped tasks (each holds a place)
	left     [messages.NumClasses]int // pumped tasks that left the queue (first grant or cancel)
	leftIDs  map[uint64]bool          // ids counted in left
	credits  [messages.NumClasses]int // credits returned so far
	finished map[uint64]task.Result
	leasedTo map[uint64]string // the dispatcher's live leases, per the grants seen
	places   map[uint64]int    // scratch for check
	steps    int
}

func newDispatchSim(t *testing.T, seed uint64) *dispatchSim {
	rng := rand.New(rand.NewPCG(seed, 7))
	cfg := DefaultConfig()
	cfg.Prefetch = float64(rng.IntN(3)) / 2
	cfg.MinPrefetch = cfg.Prefetch * float64(rng.IntN(2))
	cfg.BufferTime = time.Duration(rng.IntN(2)) * 20 * time.Millisecond
	cfg.MaxBuffer = float64(rng.IntN(4))
	cfg.MaxGrant = 1 + rng.IntN(8)
	cfg.ScanLimit = 1 + rng.IntN(8)
	cfg.LeaseTTL = time.Second
	cfg.AgingAfter = time.Duration(1+rng.IntN(3)) * 300 * time.Millisecond
	cfg.RetryBase, cfg.RetryMax = 10*time.Millisecond, 200*time.Millisecond
	s := &dispatchSim{t: t, rng: rng, m: New(cfg), now: t0, tasks: map[uint64]task.Record{},
		leftIDs: map[uint64]bool{}, finished: map[uint64]task.Result{}, leasedTo: map[uint64]string{}, places: map[uint64]int{}}
	for i := range 1 + rng.IntN(4) {
		ex := &simExec{id: fmt.Sprint("e", i), slots: int32(1 + rng.IntN(4)), held: map[uint64]int32{}}
		if rng.IntN(3) == 0 {
			ex.types = []string{"a"}
		}
		if rng.IntN(2) == 0 {
			ex.caps = map[string]string{"gpu": "a100", "cuda": fmt.Sprint(14+rng.IntN(3), ".1")}
		}
		s.execs = append(s.execs, ex)
	}
	// Someone can run everything, so the drain finishes.
	s.execs[0].types, s.execs[0].caps = nil, map[string]string{"gpu": "a100", "cuda": "15.1"}
	return s
}

func (s *dispatchSim) register(ex *simExec) {
	ex.alive, ex.sleep = true, false
	if ex.inc == 0 {
		ex.inc = s.rng.Uint64() | 1
	}
	s.apply(s.m.Register(s.now, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: ex.id, Slots: ex.slots, Types: ex.types, Capabilities: ex.caps, Incarnation: ex.inc}))
}

func (s *dispatchSim) enqueue(n int) {
	var batch []task.Record
	for range n {
		s.nextID++
		r := task.Record{ID: s.nextID, Class: messages.Class(s.rng.IntN(messages.NumClasses)),
			Priority: int32(s.rng.IntN(101)), Type: []string{"a", "b"}[s.rng.IntN(2)], MaxAttempts: int32(1 + s.rng.IntN(3))}
		switch s.rng.IntN(8) {
		case 0, 1:
			r.Requirements = map[string]string{"cuda": ">= 15.0, < 16"}
		case 2: // pinned to one executor that runs its type, with a size
			var can []string
			for _, ex := range s.execs {
				if ex.types == nil || slices.Contains(ex.types, r.Type) {
					can = append(can, ex.id)
				}
			}
			r.Pin, r.Size = can[s.rng.IntN(len(can))], float64(1+s.rng.IntN(100))
			r.Requirements = map[string]string{messages.ReqPin: task.PinRequirement(r.Pin), messages.ReqSize: task.SizeRequirement(r.Size)}
		case 3:
			r.Size = s.rng.Float64() * 50
			r.Requirements = map[string]string{messages.ReqSize: task.SizeRequirement(r.Size)}
		}
		if s.rng.IntN(5) == 0 { // a run timeout (timeout.go)
			r.TimeoutMillis = int64(50 + s.rng.IntN(1000))
		}
		s.tasks[r.ID] = r
		s.enqueued[r.Class]++
		batch = append(batch, r)
	}
	s.apply(s.m.Enqueue(s.now, batch))
}

func (s *dispatchSim) results(ex *simExec) []messages.Result {
	var out []messages.Result
	for _, id := range slices.Sorted(maps.Keys(ex.held)) {
		attempt := ex.held[id]
		switch s.rng.IntN(6) {
		case 0, 1:
			out = append(out, messages.Result{TaskID: id, Attempt: attempt, OK: true, RunNanos: int64(1 + s.rng.IntN(int(time.Millisecond)))})
		case 2:
			out = append(out, messages.Result{TaskID: id, Attempt: attempt, Error: "x", Permanent: s.rng.IntN(4) == 0})
		case 3:
			out = append(out, messages.Result{TaskID: id, Attempt: attempt + 1, OK: true}) // stale
		default:
			continue // still running
		}
		if out[len(out)-1].Attempt == attempt {
			delete(ex.held, id)
		}
	}
	return out
}

func (s *dispatchSim) exec(id string) *simExec {
	for _, ex := range s.execs {
		if ex.id == id {
			return ex
		}
	}
	s.t.Fatalf("grant to unknown executor %q", id)
	return nil
}

func (s *dispatchSim) apply(fx Effects) {
	t := s.t
	t.Helper()
	for c, n := range fx.Credit {
		if n < 0 {
			t.Fatalf("negative credit %d", n)
		}
		s.credits[c] += n
	}
	for _, gt := range fx.Grants {
		ex := s.exec(gt.Executor)
		if gt.Grant.Err != nil {
			t.Fatalf("grant with error %v", gt.Grant.Err)
		}
		for _, id := range gt.Grant.Cancel {
			delete(ex.held, id)
		}
		ex.sleep = gt.Grant.Sleep
		if st, _ := s.m.StateOf(ex.id); len(gt.Grant.Tasks) > 0 && st != messages.ExecActive {
			t.Fatalf("tasks granted to %s, which is %s", ex.id, st)
		}
		for _, tk := range gt.Grant.Tasks {
			if other, dup := s.leasedTo[tk.ID]; dup {
				t.Fatalf("task %d granted to %s while leased to %s", tk.ID, ex.id, other)
			}
			if _, done := s.finished[tk.ID]; done {
				t.Fatalf("finished task %d granted again", tk.ID)
			}
			r := s.tasks[tk.ID]
			if s.m.paused.Type(r.Type) || s.m.paused.Class(r.Class) {
				t.Fatalf("task %d (%s, %v) granted while paused %+v", tk.ID, r.Type, r.Class, s.m.paused)
			}
			if tk.TimeoutMillis != r.TimeoutMillis {
				t.Fatalf("task %d granted with timeout %d, has %d", tk.ID, tk.TimeoutMillis, r.TimeoutMillis)
			}
			if tk.Attempt < 1 || tk.Attempt > r.MaxAttempts {
				t.Fatalf("task %d granted as attempt %d of %d", tk.ID, tk.Attempt, r.MaxAttempts)
			}
			if ex.types != nil && !slices.Contains(ex.types, r.Type) {
				t.Fatalf("task of type %s granted to %s (types %v)", r.Type, ex.id, ex.types)
			}
			for k, v := range r.Requirements {
				if k == messages.ReqPin && v != "="+ex.id {
					t.Fatalf("task %d pinned %s, granted to %s", tk.ID, v, ex.id)
				}
				if k != messages.ReqPin && k != messages.ReqSize && !task.Satisfies(ex.caps[k], v) {
					t.Fatalf("task %d needs %s %s, granted to %s with %v", tk.ID, k, v, ex.id, ex.caps)
				}
			}
			s.leasedTo[tk.ID] = ex.id
			ex.held[tk.ID] = tk.Attempt
			if !s.leftIDs[tk.ID] {
				s.leftIDs[tk.ID] = true
				s.left[r.Class]++
			}
		}
		perSlot := s.m.cfg.Prefetch
		if s.m.cfg.BufferTime > 0 {
			perSlot = max(perSlot, s.m.cfg.MaxBuffer)
		}
		limit := int(ex.slots) + int(perSlot*float64(ex.slots))
		if n := s.m.execs[ex.id]; n != nil && len(n.leases) > limit {
			t.Fatalf("%s holds %d leases, more than slots × (1 + max(prefetch, buffer)) = %d", ex.id, len(n.leases), limit)
		}
	}
	for _, r := range fx.Finished {
		if prev, dup := s.finished[r.ID]; dup {
			t.Fatalf("task %d finished twice: %v then %v", r.ID, prev.State, r.State)
		}
		s.finished[r.ID] = r
		if r.State == messages.StateCancelled && !s.leftIDs[r.ID] {
			s.leftIDs[r.ID] = true
			s.left[s.tasks[r.ID].Class]++
		}
	}
	for _, r := range fx.Replies {
		if g, isGrant := r.Msg.(*messages.Grant); isGrant && g.Err != nil {
			ex := s.exec(r.Executor)
			ex.alive = false // told to register again
			clear(ex.held)
		}
	}
	s.syncLeases()
	s.check()
}

// syncLeases rebuilds the lease view from the machine (expiry, results and
// cancellation drop leases without a message to the executor).
func (s *dispatchSim) syncLeases() {
	clear(s.leasedTo)
	for id, le := range s.m.leases {
		s.leasedTo[id] = le.exec.id
	}
}

func (s *dispatchSim) check() {
	t := s.t
	t.Helper()
	sleeping := 0
	for _, ex := range s.m.execs {
		if ex.state == messages.ExecSleeping {
			sleeping++
		}
	}
	if sleeping != s.m.sleeping {
		t.Fatalf("%d executors sleep, the count says %d", sleeping, s.m.sleeping)
	}
	// Credit conservation: one credit per pumped task that left the queue.
	if s.credits != s.left {
		t.Fatalf("credits returned %v, pumped tasks that left the queue %v", s.credits, s.left)
	}
	// Every task is in exactly one place: queued, waiting to retry, leased, or finished.
	places := s.places
	clear(places)
	for c := range s.m.queues {
		for _, e := range s.m.queues[c] {
			places[e.rec.ID]++
		}
	}
	for _, r := range s.m.delayed {
		places[r.e.rec.ID]++
	}
	// Held back by a pause (pause.go): only tasks of paused types, none of
	// which is in a heap; the per-class counts agree.
	var heldN [messages.NumClasses]int
	for typ, es := range s.m.held {
		if !s.m.paused.Type(typ) && len(es) > 0 {
			t.Fatalf("%d tasks held for type %s, which is not paused", len(es), typ)
		}
		for _, e := range es {
			places[e.rec.ID]++
			heldN[e.rec.Class]++
		}
	}
	if heldN != s.m.pauseState.n {
		t.Fatalf("held per class %v, counted %v", heldN, s.m.pauseState.n)
	}
	for c := range s.m.queues {
		for _, e := range s.m.queues[c] {
			if s.m.paused.Type(e.rec.Type) {
				t.Fatalf("task %d of paused type %s is in a heap", e.rec.ID, e.rec.Type)
			}
		}
	}
	asideN := 0
	for _, g := range s.m.aside {
		for _, e := range g.entries {
			places[e.rec.ID]++
			asideN++
			if s.m.placeable(e) {
				t.Fatalf("task %d set aside though an executor satisfies %s", e.rec.ID, g.reqs)
			}
		}
	}
	// A set-aside list's refusals name every registered executor once,
	// under a filter that refuses it.
	for _, g := range s.m.aside {
		named := 0
		for _, r := range g.refused {
			for _, id := range r.Executors {
				named++
				ex := s.m.execs[id]
				if ex == nil || slices.ContainsFunc(s.m.filters, func(f Filter) bool { return f.Name() == r.Filter && f.Feasible(&g.entries[0].rec, Executor{ex}) }) {
					t.Fatalf("set-aside %s: %s refused %s, which is gone or passes it", g.reqs, r.Filter, id)
				}
			}
		}
		if named != len(s.m.execs) {
			t.Fatalf("set-aside %s: refusals name %d executors, %d registered", g.reqs, named, len(s.m.execs))
		}
	}
	// Backlogs are the sums of their leases' estimates.
	for _, ex := range s.m.execs {
		sum := 0.0
		for _, le := range ex.leases {
			sum += le.est
		}
		if d := ex.backlog - sum; d > 1e-3*max(sum, 1) || d < -1e-3*max(sum, 1) {
			t.Fatalf("executor %s: backlog %v, its leases' estimates sum to %v", ex.id, ex.backlog, sum)
		}
	}
	if s.arriving {
		for c := range s.m.queues {
			for _, e := range s.m.queues[c] {
				// Without requirements a task needs only an executor of its
				// type (in any state), or none registered at all.
				ok := e.shape == "" && len(s.m.execs) == 0
				for _, ex := range s.m.execs {
					serves := ex.types == nil || ex.types[e.rec.Type]
					if serves && (e.shape == "" || ex.state != messages.ExecDraining && ex.satisfies(e.rec.Requirements)) {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("step %d: task %d (%s %q) queued though no executor can run it; unplaceable=%d", s.steps, e.rec.ID, e.rec.Type, e.shape, s.m.UnplaceableCount())
				}
			}
		}
	}
	if asideN != s.m.UnplaceableCount() {
		t.Fatalf("set-aside count %d, lists hold %d", s.m.UnplaceableCount(), asideN)
	}
	for id := range s.m.leases {
		places[id]++
	}
	// The deadline heap holds exactly the live timed leases (timeout.go).
	timed := 0
	for _, le := range s.m.leases {
		if le.deadline != 0 {
			timed++
		}
	}
	if timed != len(s.m.deadlines) {
		t.Fatalf("%d live timed leases, %d deadlines", timed, len(s.m.deadlines))
	}
	for i, le := range s.m.deadlines {
		if le.heapAt != i || s.m.leases[le.e.rec.ID] != le {
			t.Fatalf("deadline %d of task %d: heapAt %d, live %v", i, le.e.rec.ID, le.heapAt, s.m.leases[le.e.rec.ID] == le)
		}
	}
	for id := range s.finished {
		places[id]++
	}
	for id := range s.tasks {
		if places[id] != 1 {
			t.Fatalf("task %d is in %d places (state %v)", id, places[id], s.m.State(id))
		}
	}
	var queued [messages.NumClasses]int
	for c := range s.m.queues {
		for _, e := range s.m.queues[c] {
			if e.holdsPlace {
				queued[c]++
			}
		}
	}
	for _, g := range s.m.aside {
		for _, e := range g.entries {
			if e.holdsPlace {
				queued[e.rec.Class]++
			}
		}
	}
	for _, es := range s.m.held {
		for _, e := range es {
			if e.holdsPlace {
				queued[e.rec.Class]++
			}
		}
	}
	for c := range queued {
		if queued[c] != s.enqueued[c]-s.left[c] {
			t.Fatalf("class %v: %d queued with a place, %d enqueued − %d left", messages.Class(c), queued[c], s.enqueued[c], s.left[c])
		}
	}
}

func (s *dispatchSim) step(arrivals bool) {
	s.steps++
	s.arriving = arrivals
	s.now = s.now.Add(time.Duration(s.rng.IntN(150)) * time.Millisecond)
	ex := s.execs[s.rng.IntN(len(s.execs))]
	switch k := s.rng.IntN(10); {
	case k == 0 && arrivals:
		s.enqueue(1 + s.rng.IntN(6))
	case k <= 3:
		if !ex.alive {
			s.register(ex)
			return
		}
		if ex.sleep { // asleep: heartbeats only
			s.apply(s.m.Heartbeat(s.now, &messages.Heartbeat{ExecutorID: ex.id, Results: s.results(ex)}))
			return
		}
		load := messages.LoadReport{CPU: s.rng.Float64(), InFlight: int32(len(ex.held))}
		s.apply(s.m.Pull(s.now, &messages.Pull{ExecutorID: ex.id, Load: load, Results: s.results(ex)}))
	case k <= 5:
		if ex.alive {
			s.apply(s.m.Heartbeat(s.now, &messages.Heartbeat{ExecutorID: ex.id, Results: s.results(ex)}))
		}
	case k == 6 && arrivals && s.nextID > 0:
		var ids []uint64
		for range 1 + s.rng.IntN(3) {
			ids = append(ids, 1+uint64(s.rng.IntN(int(s.nextID))))
		}
		s.apply(s.m.Cancel(s.now, ids))
	case k == 7 && arrivals:
		s.now = s.now.Add(time.Second) // long silences: leases expire
		s.apply(s.m.Tick(s.now))
	case k == 8 && arrivals && s.rng.IntN(4) == 0:
		clear(ex.held) // the executor restarts and registers again
		ex.inc = 0
		if ex != s.execs[0] && s.rng.IntN(2) == 0 { // redeployed with other capabilities
			if ex.caps == nil {
				ex.caps = map[string]string{"gpu": "a100", "cuda": "15.2"}
			} else {
				ex.caps = nil
			}
		}
		s.register(ex)
	case k == 8 && arrivals && ex.alive && s.rng.IntN(3) == 0:
		s.register(ex) // same run registers again (lost answer): keeps its leases
	case k == 8 && arrivals && s.rng.IntN(3) == 0:
		// Its leases end without a message to it; it may still report
		// them (fenced).
		maps.DeleteFunc(s.leasedTo, func(_ uint64, who string) bool { return who == ex.id })
		s.apply(s.m.Evict(s.now, ex.id, "failed health"))
	case k == 9 && arrivals && s.rng.IntN(3) == 0: // pause or resume (pause.go)
		var p task.Paused
		if s.rng.IntN(3) > 0 {
			p.Types = []string{"a", "b"}[:s.rng.IntN(2)]
			for c := range messages.Class(messages.NumClasses) {
				if s.rng.IntN(3) == 0 {
					p.Classes = append(p.Classes, c)
				}
			}
		}
		s.apply(s.m.SetPaused(s.now, p))
	case k == 8 && arrivals:
		state := []string{messages.ExecActive, messages.ExecSleeping, messages.ExecDraining}[s.rng.IntN(3)]
		fx, _ := s.m.SetState(s.now, ex.id, state)
		s.apply(fx)
	default:
		s.apply(s.m.Tick(s.now))
	}
}

func TestDispatchSimulation(t *testing.T) {
	for seed := range uint64(150) {
		s := newDispatchSim(t, seed)
		for range 400 {
			s.step(true)
		}
		// Drain: every executor active again (a sleeper wakes on work
		// anyway; a drained one would not), then executors keep pulling
		// and reporting until all is finished.
		for _, ex := range s.execs {
			fx, _ := s.m.SetState(s.now, ex.id, messages.ExecActive)
			s.apply(fx)
		}
		s.apply(s.m.SetPaused(s.now, task.Paused{})) // and nothing paused
		for i := 0; len(s.finished) < len(s.tasks); i++ {
			if i > 20_000 {
				t.Fatalf("seed %d: %d of %d tasks finished; queued %d, leases %d, retries %d",
					seed, len(s.finished), len(s.tasks), s.m.Queued(), s.m.Leases(), s.m.delayed.Len())
			}
			s.step(false)
		}
		if testing.Verbose() && seed%50 == 0 {
			t.Logf("seed %d: %d tasks, %d steps, counters %+v", seed, len(s.tasks), s.steps, s.m.Counters)
		}
		var all [messages.NumClasses]int
		for c := range all {
			all[c] = s.enqueued[c]
		}
		if s.credits != all {
			t.Fatalf("seed %d: credits %v after draining, want one per pumped task %v", seed, s.credits, all)
		}
	}
}
