package pump

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

var t0 = time.Unix(1_700_000_000, 0)

const (
	high   = messages.ClassHigh
	normal = messages.ClassNormal
	low    = messages.ClassLow
)

func mkRecord(id uint64, c messages.Class) task.Record {
	return task.Record{ID: id, Class: c, Type: "t"}
}

func tasks(c messages.Class, ids ...uint64) []task.Record {
	out := make([]task.Record, len(ids))
	for i, id := range ids {
		out[i] = mkRecord(id, c)
	}
	return out
}

func ids(ts []task.Record) []uint64 {
	out := make([]uint64, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func cfg(batch int) Config {
	return Config{BatchSize: batch, MinInterval: time.Millisecond, MaxInterval: 100 * time.Millisecond}
}

func caps(h, n, l int) [messages.NumClasses]int { return [messages.NumClasses]int{h, n, l} }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{BatchSize: 0, MinInterval: 1, MaxInterval: 1},
		{BatchSize: 1, MinInterval: 0, MaxInterval: 1},
		{BatchSize: 1, MinInterval: 2, MaxInterval: 1},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestFreshStartNeedsNoRefill(t *testing.T) {
	m := New(cfg(10), caps(5, 5, 5), 0)
	fx := m.Start(t0)
	if len(fx.Loads) != 0 || fx.Tick != 0 || len(fx.Forward) != 0 {
		t.Fatalf("fresh start effects = %+v, want none", fx)
	}
}

func TestFastPathUsesCredit(t *testing.T) {
	m := New(cfg(10), caps(2, 1, 0), 0)
	m.Start(t0)
	fx := m.Persisted(t0, append(tasks(high, 1, 2), mkRecord(3, normal)))
	if got := ids(fx.Forward); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("forwarded %v, want [1 2 3]", got)
	}
	if m.Standby() != 0 || fx.Tick != 0 || len(fx.Loads) != 0 {
		t.Fatalf("standby %d, effects %+v", m.Standby(), fx)
	}
	// No credit left in high: the next high task waits; normal has none either; low never had any.
	fx = m.Persisted(t0, []task.Record{mkRecord(4, high), mkRecord(5, normal), mkRecord(6, low), mkRecord(7, high)})
	if len(fx.Forward) != 0 {
		t.Fatalf("forwarded %v without credit", ids(fx.Forward))
	}
	if fx.Tick != 0 {
		t.Errorf("a tick was asked for although no class has credit")
	}
	if m.Standby() != 4 || m.ClassStandby(high) != 2 || m.ClassStandby(normal) != 1 || m.ClassStandby(low) != 1 {
		t.Errorf("standby = %d (%d %d %d)", m.Standby(), m.ClassStandby(high), m.ClassStandby(normal), m.ClassStandby(low))
	}
}

// A class in standby keeps its order: a later task does not overtake the
// standby ones through the fast path, even once credit is back.
func TestStandbyClassDoesNotTakeFastPath(t *testing.T) {
	m := New(cfg(10), caps(1, 1, 1), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(high, 1, 2)) // 1 forwarded, 2 standby
	fx := m.Credit(t0, high, 5)
	if fx.Tick <= 0 {
		t.Fatalf("credit with standby work asked for no tick: %+v", fx)
	}
	fx = m.Persisted(t0, tasks(high, 3))
	if len(fx.Forward) != 0 {
		t.Fatalf("task 3 overtook standby task 2: forwarded %v", ids(fx.Forward))
	}
	if m.ClassStandby(high) != 2 {
		t.Errorf("standby = %d, want 2", m.ClassStandby(high))
	}
}

func TestRefillCycle(t *testing.T) {
	m := New(cfg(3), caps(1, 1, 1), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(normal, 10, 11, 12, 13, 14, 15))
	if m.ClassStandby(normal) != 5 {
		t.Fatalf("standby = %d", m.ClassStandby(normal))
	}
	fx := m.Credit(t0, normal, 10)
	if fx.Tick <= 0 || len(fx.Loads) != 0 {
		t.Fatalf("credit: %+v, want a tick and no load yet", fx)
	}
	fx = m.Tick(t0.Add(fx.Tick))
	want := Load{Class: normal, After: 10, Limit: 3}
	if len(fx.Loads) != 1 || fx.Loads[0] != want {
		t.Fatalf("tick loads = %+v, want [%+v]", fx.Loads, want)
	}
	// A full batch: the next one is asked for at once.
	fx = m.Loaded(t0, normal, tasks(normal, 11, 12, 13), false)
	if got := ids(fx.Forward); !slices.Equal(got, []uint64{11, 12, 13}) {
		t.Fatalf("forwarded %v", got)
	}
	want = Load{Class: normal, After: 13, Limit: 3}
	if len(fx.Loads) != 1 || fx.Loads[0] != want {
		t.Fatalf("loads after a full batch = %+v, want [%+v]", fx.Loads, want)
	}
	if m.ClassStandby(normal) != 2 {
		t.Errorf("standby = %d, want 2", m.ClassStandby(normal))
	}
	// Exhausted with nothing new: back on the fast path.
	fx = m.Loaded(t0, normal, tasks(normal, 14, 15), true)
	if got := ids(fx.Forward); !slices.Equal(got, []uint64{14, 15}) {
		t.Fatalf("forwarded %v", got)
	}
	if len(fx.Loads) != 0 || fx.Tick != 0 {
		t.Errorf("after exhaustion: %+v, want nothing more", fx)
	}
	if m.Standby() != 0 {
		t.Errorf("standby = %d after exhaustion", m.Standby())
	}
	fx = m.Persisted(t0, tasks(normal, 16))
	if got := ids(fx.Forward); !slices.Equal(got, []uint64{16}) {
		t.Fatalf("fast path after refill forwarded %v", got)
	}
	// task.Credit used: 10 returned, 5 refilled + 1 fast = 4 left.
	if m.classes[normal].credit != 4 {
		t.Errorf("credit = %d, want 4", m.classes[normal].credit)
	}
}

func TestLoadLimitedByCreditAndBatch(t *testing.T) {
	for _, c := range []struct {
		credit, batch, want int
	}{{2, 10, 2}, {10, 4, 4}, {5, 5, 5}} {
		m := New(cfg(c.batch), caps(0, 0, 0), 0)
		m.Start(t0)
		m.Persisted(t0, tasks(low, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12))
		m.Credit(t0, low, c.credit)
		fx := m.Tick(t0)
		if len(fx.Loads) != 1 || fx.Loads[0].Limit != c.want || fx.Loads[0].After != 0 {
			t.Errorf("credit %d batch %d: loads %+v, want limit %d after 0", c.credit, c.batch, fx.Loads, c.want)
		}
	}
}

// One tick refills at most the credit it found: once the budget is spent
// the rest waits for the next tick even if more credit arrives.
func TestTickBudget(t *testing.T) {
	m := New(cfg(2), caps(0, 0, 0), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(high, 1, 2, 3, 4, 5, 6))
	m.Credit(t0, high, 3)
	fx := m.Tick(t0)
	if fx.Loads[0].Limit != 2 {
		t.Fatalf("loads %+v", fx.Loads)
	}
	fx = m.Loaded(t0, high, tasks(high, 1, 2), false)
	if len(fx.Loads) != 1 || fx.Loads[0] != (Load{Class: high, After: 2, Limit: 1}) {
		t.Fatalf("second load %+v, want one task (budget 1 left)", fx.Loads)
	}
	m.Credit(t0, high, 10)
	fx = m.Loaded(t0, high, tasks(high, 3), false)
	if len(fx.Loads) != 0 {
		t.Fatalf("load beyond the tick's budget: %+v", fx.Loads)
	}
	if fx.Tick <= 0 {
		t.Fatalf("no tick asked for with standby work and credit")
	}
	fx = m.Tick(t0.Add(fx.Tick))
	if len(fx.Loads) != 1 || fx.Loads[0] != (Load{Class: high, After: 3, Limit: 2}) {
		t.Fatalf("next tick loads %+v", fx.Loads)
	}
}

func TestLoadedSkipsIdsAtOrBelowCursor(t *testing.T) {
	m := New(cfg(10), caps(2, 0, 0), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(high, 1, 2, 3, 4))
	m.Credit(t0, high, 4)
	fx := m.Tick(t0)
	if fx.Loads[0].After != 2 {
		t.Fatalf("load after %d, want 2", fx.Loads[0].After)
	}
	// A store that returned already handed-on ids must not make them run twice.
	fx = m.Loaded(t0, high, tasks(high, 1, 2, 3, 4), true)
	if got := ids(fx.Forward); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("forwarded %v, want [3 4]", got)
	}
}

// A Persisted batch that arrives while a Load is out: the read may or may
// not see it. Either way each task is forwarded once.
func TestPersistedDuringLoad(t *testing.T) {
	for _, readSawIt := range []bool{false, true} {
		m := New(cfg(10), caps(1, 0, 0), 0)
		m.Start(t0)
		m.Persisted(t0, tasks(high, 1, 2))
		m.Credit(t0, high, 5)
		fx := m.Tick(t0)
		if len(fx.Loads) != 1 {
			t.Fatal("no load")
		}
		var forwarded []uint64
		fx = m.Persisted(t0, tasks(high, 3))
		forwarded = append(forwarded, ids(fx.Forward)...)
		read := tasks(high, 2)
		if readSawIt {
			read = tasks(high, 2, 3)
		}
		fx = m.Loaded(t0, high, read, true)
		forwarded = append(forwarded, ids(fx.Forward)...)
		if len(fx.Loads) != 0 {
			t.Fatalf("load issued outside a tick: %+v", fx.Loads)
		}
		if fx.Tick <= 0 {
			t.Fatalf("readSawIt=%v: a task went to standby during the read, but no tick was asked for", readSawIt)
		}
		fx = m.Tick(t0.Add(fx.Tick))
		if len(fx.Loads) != 1 {
			t.Fatalf("readSawIt=%v: tick issued %+v", readSawIt, fx.Loads)
		}
		var rest []task.Record
		if !readSawIt {
			rest = tasks(high, 3)
		}
		fx = m.Loaded(t0, high, rest, true)
		forwarded = append(forwarded, ids(fx.Forward)...)
		if !slices.Equal(forwarded, []uint64{2, 3}) {
			t.Fatalf("readSawIt=%v: forwarded %v, want [2 3]", readSawIt, forwarded)
		}
		if m.Standby() != 0 {
			t.Errorf("standby %d", m.Standby())
		}
		// Back on the fast path.
		if fx = m.Persisted(t0, tasks(high, 4)); !slices.Equal(ids(fx.Forward), []uint64{4}) {
			t.Errorf("readSawIt=%v: fast path after catching up forwarded %v", readSawIt, ids(fx.Forward))
		}
	}
}

// The read saw a task before its Persisted arrived: the late Persisted must not forward it again.
func TestLatePersistedOfReadTask(t *testing.T) {
	m := New(cfg(10), caps(0, 0, 0), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(high, 1))
	m.Credit(t0, high, 5)
	m.Tick(t0)
	fx := m.Loaded(t0, high, tasks(high, 1, 2), true)
	if !slices.Equal(ids(fx.Forward), []uint64{1, 2}) {
		t.Fatalf("forwarded %v", ids(fx.Forward))
	}
	if fx = m.Persisted(t0, tasks(high, 2, 3)); !slices.Equal(ids(fx.Forward), []uint64{3}) {
		t.Fatalf("late Persisted forwarded %v, want [3]", ids(fx.Forward))
	}
}

// A failed read (the shell reports no tasks, not exhausted) is retried on
// the next tick, not at once: an immediate retry spins against a broken store.
func TestFailedLoadRetriesOnTick(t *testing.T) {
	m := New(cfg(10), caps(0, 0, 0), 0)
	m.Start(t0)
	m.Persisted(t0, tasks(low, 1, 2))
	m.Credit(t0, low, 2)
	fx := m.Tick(t0)
	if len(fx.Loads) != 1 {
		t.Fatal("no load")
	}
	fx = m.Loaded(t0, low, nil, false)
	if len(fx.Loads) != 0 {
		t.Fatalf("failed read retried at once: %+v", fx.Loads)
	}
	if fx.Tick <= 0 {
		t.Fatalf("failed read not retried on a tick: %+v", fx)
	}
	fx = m.Tick(t0.Add(fx.Tick))
	if len(fx.Loads) != 1 || fx.Loads[0] != (Load{Class: low, After: 0, Limit: 2}) {
		t.Fatalf("retry loads %+v", fx.Loads)
	}
}

func TestRecoveryReloadsEverything(t *testing.T) {
	m := New(cfg(2), caps(10, 10, 0), 7)
	fx := m.Start(t0)
	// Start ticks at once: every class with credit reads its pending index from the start.
	want := []Load{{Class: high, After: 0, Limit: 2}, {Class: normal, After: 0, Limit: 2}}
	if !slices.Equal(fx.Loads, want) {
		t.Fatalf("start loads %+v, want %+v", fx.Loads, want)
	}
	// New work after the restart waits behind the recovered work.
	if fx = m.Persisted(t0, tasks(high, 8)); len(fx.Forward) != 0 {
		t.Fatalf("new task overtook recovery: %v", ids(fx.Forward))
	}
	fx = m.Loaded(t0, high, tasks(high, 1, 4), false)
	if !slices.Equal(ids(fx.Forward), []uint64{1, 4}) || len(fx.Loads) != 1 || fx.Loads[0].After != 4 {
		t.Fatalf("recovery batch: %+v", fx)
	}
	fx = m.Loaded(t0, high, tasks(high, 6, 8), true)
	if !slices.Equal(ids(fx.Forward), []uint64{6, 8}) {
		t.Fatalf("forwarded %v", ids(fx.Forward))
	}
	fx = m.Loaded(t0, normal, tasks(normal, 2), true)
	if !slices.Equal(ids(fx.Forward), []uint64{2}) {
		t.Fatalf("normal forwarded %v", ids(fx.Forward))
	}
	// Low had no credit: it stays in standby until some arrives.
	fx = m.Credit(t0, low, 1)
	if fx.Tick <= 0 {
		t.Fatalf("low credit asked for no tick")
	}
	fx = m.Tick(t0.Add(fx.Tick))
	if len(fx.Loads) != 1 || fx.Loads[0] != (Load{Class: low, After: 0, Limit: 1}) {
		t.Fatalf("low loads %+v", fx.Loads)
	}
	fx = m.Loaded(t0, low, nil, true)
	if fx.Tick != 0 || len(fx.Loads) != 0 {
		t.Fatalf("empty low index: %+v", fx)
	}
	if fx = m.Persisted(t0, tasks(low, 9)); !slices.Equal(ids(fx.Forward), []uint64{9}) {
		t.Fatalf("low fast path after recovery forwarded %v", ids(fx.Forward))
	}
}

func TestIntervalAdapts(t *testing.T) {
	c := Config{BatchSize: 100, MinInterval: time.Millisecond, MaxInterval: 100 * time.Millisecond}
	m := New(c, caps(0, 0, 0), 0)
	m.Start(t0)
	if got := m.Interval(); got != c.MaxInterval {
		t.Fatalf("no arrivals: interval %v, want the max", got)
	}
	now := t0
	batch := make([]task.Record, 10_000)
	for i := range batch {
		batch[i] = mkRecord(uint64(i+1), high)
	}
	// step delivers n arrivals, then ticks dt later.
	step := func(n int, dt time.Duration) time.Duration {
		m.Persisted(now, batch[:n])
		now = now.Add(dt)
		m.Tick(now)
		return m.Interval()
	}
	slow := step(10, time.Second) // rate 3/s: 33 s per batch, clamped
	if slow != c.MaxInterval {
		t.Errorf("slow stream: %v, want the max %v", slow, c.MaxInterval)
	}
	prev := slow
	for range 5 {
		d := step(5000, time.Second)
		if d > prev {
			t.Errorf("interval grew from %v to %v as the rate rose", prev, d)
		}
		prev = d
	}
	if prev >= c.MaxInterval || prev <= c.MinInterval {
		t.Errorf("fast stream interval %v not within (min, max)", prev)
	}
	// A flood clamps at the minimum.
	for range 20 {
		prev = step(10_000, time.Millisecond)
	}
	if prev != c.MinInterval {
		t.Errorf("flood: %v, want the min %v", prev, c.MinInterval)
	}
	// The stream stops: the interval relaxes back to the max.
	for range 40 {
		prev = step(0, time.Second)
	}
	if prev != c.MaxInterval {
		t.Errorf("idle: %v, want the max", prev)
	}
}

func TestTickIntervalUsesRate(t *testing.T) {
	c := Config{BatchSize: 100, MinInterval: time.Millisecond, MaxInterval: time.Second}
	m := New(c, caps(0, 0, 0), 0)
	m.Start(t0)
	batch := make([]task.Record, 1000)
	for i := range batch {
		batch[i] = mkRecord(uint64(i+1), high)
	}
	m.Persisted(t0, batch)
	m.Tick(t0.Add(time.Second)) // 1000/s observed: rate 0.3 × 1000 = 300/s
	fx := m.Credit(t0, high, 1)
	rate := 300.0
	want := time.Duration(100 / rate * float64(time.Second))
	if fx.Tick != want {
		t.Fatalf("tick after %v, want %v", fx.Tick, want)
	}
}

// --- property test: a randomized simulation against a fake store ---

type pendingLoad struct {
	load  Load
	read  bool
	tasks []task.Record
}

type sim struct {
	t        *testing.T
	rng      *rand.Rand
	m        *Machine
	capacity [messages.NumClasses]int
	now      time.Time

	nextID  uint64
	pending [messages.NumClasses]map[uint64]task.Record // the store's pending index
	notify  [][]task.Record                             // durable batches whose Persisted is not delivered yet
	loads   []*pendingLoad
	armed   bool

	queued    [messages.NumClasses][]uint64 // forwarded, holding a queue place
	running   []task.Record                 // left the queue, not finished
	forwarded map[uint64]int
	lastFwd   [messages.NumClasses]uint64
	cancelled map[uint64]bool
	all       map[uint64]task.Record
}

func newSim(t *testing.T, seed uint64) *sim { return newHoldingSim(t, seed, 0) }

// newHoldingSim is newSim with a pump that holds up to hold bytes of
// standby tasks in memory.
func newHoldingSim(t *testing.T, seed uint64, hold int64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{t: t, rng: rng, now: t0, forwarded: map[uint64]int{}, cancelled: map[uint64]bool{}, all: map[uint64]task.Record{}}
	for c := range s.pending {
		s.pending[c] = map[uint64]task.Record{}
		s.capacity[c] = rng.IntN(6)
	}
	s.capacity[rng.IntN(messages.NumClasses)]++ // some class can make progress
	// Sometimes start over a store with pending work (recovery).
	var maxID uint64
	if rng.IntN(3) == 0 {
		for range rng.IntN(30) {
			s.durable()
		}
		s.notify = nil // acknowledged before the restart: no Persisted comes
		maxID = s.nextID
	}
	cfg := Config{BatchSize: 1 + rng.IntN(6), MinInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond, HoldBytes: hold}
	s.m = New(cfg, s.capacity, maxID)
	s.apply(s.m.Start(s.now))
	return s
}

// durable makes one new task durable in the store (not yet announced).
func (s *sim) durable() task.Record {
	s.nextID++
	t := mkRecord(s.nextID, messages.Class(s.rng.IntN(messages.NumClasses)))
	s.pending[t.Class][t.ID] = t
	s.all[t.ID] = t
	return t
}

func (s *sim) apply(fx Effects) {
	t := s.t
	t.Helper()
	var dropped [messages.NumClasses]int
	for _, f := range fx.Forward {
		s.forwarded[f.ID]++
		if s.forwarded[f.ID] > 1 {
			t.Fatalf("task %d forwarded %d times", f.ID, s.forwarded[f.ID])
		}
		if f.ID <= s.lastFwd[f.Class] {
			t.Fatalf("class %v: task %d forwarded after %d", f.Class, f.ID, s.lastFwd[f.Class])
		}
		s.lastFwd[f.Class] = f.ID
		if s.cancelled[f.ID] {
			// Dedupe drops a task cancelled in standby and returns its
			// place once it has taken the whole batch (as the queue does).
			dropped[f.Class]++
			continue
		}
		s.queued[f.Class] = append(s.queued[f.Class], f.ID)
	}
	defer func() {
		for c, n := range dropped {
			if n > 0 {
				s.apply(s.m.Credit(s.now, messages.Class(c), n))
			}
		}
	}()
	for _, l := range fx.Loads {
		for _, pl := range s.loads {
			if pl.load.Class == l.Class {
				t.Fatalf("second load for class %v while one is out", l.Class)
			}
		}
		if l.Limit <= 0 || l.Limit > s.m.cfg.BatchSize {
			t.Fatalf("load limit %d outside (0, %d]", l.Limit, s.m.cfg.BatchSize)
		}
		s.loads = append(s.loads, &pendingLoad{load: l})
	}
	if fx.Tick > 0 {
		if fx.Tick < s.m.cfg.MinInterval || fx.Tick > s.m.cfg.MaxInterval {
			t.Fatalf("tick after %v outside [%v, %v]", fx.Tick, s.m.cfg.MinInterval, s.m.cfg.MaxInterval)
		}
		s.armed = true
	}
	s.check()
}

func (s *sim) check() {
	t := s.t
	t.Helper()
	for c := range s.m.classes {
		cl := &s.m.classes[c]
		if cl.credit < 0 {
			t.Fatalf("class %v: credit %d", messages.Class(c), cl.credit)
		}
		if len(s.queued[c])+cl.credit > s.capacity[c] {
			t.Fatalf("class %v: %d queued + %d credit > capacity %d", messages.Class(c), len(s.queued[c]), cl.credit, s.capacity[c])
		}
		if cl.count < 0 {
			t.Fatalf("class %v: standby count %d", messages.Class(c), cl.count)
		}
	}
}

func (s *sim) read(pl *pendingLoad) {
	var out []task.Record
	for id, t := range s.pending[pl.load.Class] {
		if id > pl.load.After {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b task.Record) int { return int(a.ID) - int(b.ID) })
	if len(out) > pl.load.Limit {
		out = out[:pl.load.Limit]
	}
	pl.tasks, pl.read = out, true
}

// step performs one random event; it reports false when it found nothing to do.
func (s *sim) step(arrivals bool) bool {
	s.now = s.now.Add(time.Duration(s.rng.IntN(5)) * time.Millisecond)
	var moves []func()
	if arrivals {
		moves = append(moves, func() {
			batch := make([]task.Record, 1+s.rng.IntN(4))
			for i := range batch {
				batch[i] = s.durable()
			}
			s.notify = append(s.notify, batch)
		})
	}
	if len(s.notify) > 0 {
		moves = append(moves, func() {
			b := s.notify[0]
			s.notify = s.notify[1:]
			s.apply(s.m.Persisted(s.now, b))
		})
	}
	for c := range s.queued {
		if len(s.queued[c]) > 0 {
			moves = append(moves, func() {
				n := 1 + s.rng.IntN(len(s.queued[c]))
				for _, id := range s.queued[c][:n] {
					s.running = append(s.running, s.all[id])
				}
				s.queued[c] = s.queued[c][n:]
				s.apply(s.m.Credit(s.now, messages.Class(c), n))
			})
		}
	}
	if len(s.running) > 0 {
		moves = append(moves, func() {
			i := s.rng.IntN(len(s.running))
			r := s.running[i]
			s.running = slices.Delete(s.running, i, i+1)
			delete(s.pending[r.Class], r.ID) // finished: its result removes the pending entry
		})
	}
	if s.armed {
		moves = append(moves, func() {
			s.armed = false
			s.apply(s.m.Tick(s.now))
		})
	}
	if arrivals {
		moves = append(moves, func() { s.apply(s.m.Tick(s.now)) }) // a stale timer message
		// Cancel a standby task: its result removes it from the pending index.
		moves = append(moves, func() {
			c := s.rng.IntN(messages.NumClasses)
			for _, id := range slices.Sorted(maps.Keys(s.pending[c])) {
				if s.forwarded[id] == 0 && !s.cancelled[id] && s.rng.IntN(3) == 0 {
					s.cancelled[id] = true
					delete(s.pending[c], id)
					return
				}
			}
		})
	}
	for i, pl := range s.loads {
		if !pl.read {
			moves = append(moves, func() { s.read(pl) })
			continue
		}
		moves = append(moves, func() {
			s.loads = slices.Delete(s.loads, i, i+1)
			if arrivals && s.rng.IntN(8) == 0 {
				s.apply(s.m.Loaded(s.now, pl.load.Class, nil, false)) // a failed read
				return
			}
			s.apply(s.m.Loaded(s.now, pl.load.Class, pl.tasks, len(pl.tasks) < pl.load.Limit))
		})
	}
	if len(moves) == 0 {
		return false
	}
	moves[s.rng.IntN(len(moves))]()
	return true
}

// simulate runs 400 seeded simulations of the sim that mk builds and checks
// that every task was forwarded once (cancelled ones at most once) and
// nothing was left behind.
func simulate(t *testing.T, mk func(seed uint64) *sim) {
	t.Helper()
	for seed := range uint64(400) {
		s := mk(seed)
		for range 300 + s.rng.IntN(300) {
			s.step(true)
		}
		// Drain: no more arrivals; deliver everything until nothing moves.
		steps := 0
		for s.step(false) {
			if steps++; steps > 100_000 {
				t.Fatalf("seed %d: no quiescence", seed)
			}
		}
		for id, rec := range s.all {
			switch {
			case s.cancelled[id] && s.forwarded[id] > 1:
				t.Fatalf("seed %d: cancelled task %d forwarded %d times", seed, id, s.forwarded[id])
			case s.capacity[rec.Class] == 0 && s.forwarded[id] != 0:
				t.Fatalf("seed %d: task %d forwarded into a class without places", seed, id)
			case s.capacity[rec.Class] > 0 && !s.cancelled[id] && s.forwarded[id] != 1:
				t.Fatalf("seed %d: task %d (class %v, capacity %d) forwarded %d times; standby %v",
					seed, id, rec.Class, s.capacity[rec.Class], s.forwarded[id], s.m.classes[rec.Class])
			}
		}
		for c := range s.m.classes {
			cl := &s.m.classes[c]
			if s.capacity[c] > 0 && (cl.standby || cl.count != 0) {
				t.Fatalf("seed %d: class %v still in standby after draining: %+v", seed, messages.Class(c), *cl)
			}
			if s.capacity[c] > 0 && cl.credit != s.capacity[c] {
				t.Fatalf("seed %d: class %v credit %d after draining, want %d", seed, messages.Class(c), cl.credit, s.capacity[c])
			}
		}
	}
}

func TestPumpSimulation(t *testing.T) {
	simulate(t, func(seed uint64) *sim { return newSim(t, seed) })
}

// TestPumpSimulationHolding runs the simulation with a pump holding 0 to
// 12 tasks' worth of standby in memory: the same invariants hold.
func TestPumpSimulationHolding(t *testing.T) {
	one := heldSize(&task.Record{Type: "t"})
	simulate(t, func(seed uint64) *sim { return newHoldingSim(t, seed, one*int64(seed%13)) })
}

// TestHeldStandbyRefillsWithoutStore: standby tasks within HoldBytes go on
// as places free, with no store read; past it the class spills, and once
// the held ones are gone the refill reads the store after them.
func TestHeldStandbyRefillsWithoutStore(t *testing.T) {
	c := cfg(10)
	c.HoldBytes = 2 * heldSize(&task.Record{Type: "t"})
	m := New(c, caps(1, 1, 1), 0)
	m.Start(t0)
	if fx := m.Persisted(t0, tasks(normal, 1, 2, 3, 4)); !slices.Equal(ids(fx.Forward), []uint64{1}) {
		t.Fatalf("fast path forwarded %v, want [1]", ids(fx.Forward))
	}
	if m.Standby() != 3 {
		t.Fatalf("standby %d, want 3 (2 held, 1 spilled)", m.Standby())
	}
	fx := m.Credit(t0, normal, 2)
	if !slices.Equal(ids(fx.Forward), []uint64{2, 3}) || len(fx.Loads) != 0 {
		t.Fatalf("credit: forwarded %v loads %v, want the held [2 3] and no load", ids(fx.Forward), fx.Loads)
	}
	fx = m.Credit(t0, normal, 1)
	if len(fx.Forward) != 0 || fx.Tick == 0 {
		t.Fatalf("after the held ones: %+v, want a refill tick", fx)
	}
	fx = m.Tick(t0.Add(fx.Tick))
	if len(fx.Loads) != 1 || fx.Loads[0].After != 3 {
		t.Fatalf("refill loads %v, want one after id 3", fx.Loads)
	}
	fx = m.Loaded(t0, normal, tasks(normal, 4), true)
	if !slices.Equal(ids(fx.Forward), []uint64{4}) || m.Standby() != 0 {
		t.Fatalf("loaded: forwarded %v, standby %d", ids(fx.Forward), m.Standby())
	}
	if fx := m.Credit(t0, normal, 1); len(fx.Forward) != 0 {
		t.Fatal("nothing left to forward")
	}
	if fx := m.Persisted(t0, tasks(normal, 5)); !slices.Equal(ids(fx.Forward), []uint64{5}) {
		t.Fatalf("back on the fast path: forwarded %v, want [5]", ids(fx.Forward))
	}
}
