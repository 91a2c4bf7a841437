// Package pump is the compensation pump (S0.2). Durable tasks take a fast
// path straight to dedupe while their class's queue has room (credit). When
// it has none, tasks stay in the store as standby and the pump refills the
// queue from the store's pending index in batches, at an interval that
// adapts to the arrival rate. Nothing is dropped: standby tasks are durable,
// and intake refuses new work once the standby count passes its limit.
//
// The pump keeps, per class, a cursor: every pending task with an id at or
// below it has been handed on (or has finished). Ids are assigned in order
// and made durable in order, so the tasks above the cursor are exactly the
// standby ones.
//
// Standby tasks are also held in memory, up to Config.HoldBytes, so that a
// refill usually needs no store read: what is held is always the oldest
// standby tasks of the class, contiguous from the cursor. Once a task finds
// the hold full the class has spilled: every later standby task waits in
// the store only, and when the held ones are handed on the refill reads the
// store after them, as without a hold, until it catches up. Holding is a
// cache of durable tasks: a restart reads them all back from the store.
package pump

import (
	"fmt"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config tunes the pump.
type Config struct {
	// BatchSize is how many standby tasks one refill reads (S0.2 suggests
	// 50/100/200). Default 200.
	BatchSize int
	// MinInterval and MaxInterval bound the refill interval, which is
	// BatchSize / arrival rate. Defaults 1 ms and 100 ms.
	MinInterval, MaxInterval time.Duration
	// HoldBytes bounds the standby tasks held in memory besides the store
	// (estimated record bytes, all classes together): held tasks refill the
	// queue as places free, with no store read. Default 32 MiB; 0 holds none.
	HoldBytes int64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{BatchSize: 200, MinInterval: time.Millisecond, MaxInterval: 100 * time.Millisecond, HoldBytes: 32 << 20}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.BatchSize <= 0:
		return fmt.Errorf("pump: BatchSize must be > 0, got %d", c.BatchSize)
	case c.MinInterval <= 0 || c.MaxInterval < c.MinInterval:
		return fmt.Errorf("pump: need 0 < MinInterval <= MaxInterval, got %v and %v", c.MinInterval, c.MaxInterval)
	case c.HoldBytes < 0:
		return fmt.Errorf("pump: HoldBytes must be >= 0, got %d", c.HoldBytes)
	}
	return nil
}

// Load asks the shell to read up to Limit pending tasks of Class with id > After.
type Load struct {
	Class messages.Class
	After uint64
	Limit int
}

// Effects are what the shell must do after a step.
type Effects struct {
	Forward []task.Record // to dedupe, in order
	Loads   []Load
	// Tick, when > 0, asks for a Tick after this delay (replacing any pending one).
	Tick time.Duration
}

type class struct {
	credit     int    // free places in the dispatch queue
	standby    bool   // tasks above cursor wait in the store
	cursor     uint64 // every pending id <= cursor was handed on
	maxStandby uint64 // highest id seen going to standby
	count      int64  // standby tasks (estimate after a restart)
	loading    bool   // a Load is out
	mark       uint64 // maxStandby when the outstanding Load was issued
	budget     int    // tasks this tick may still refill
	// held are the oldest standby tasks, ids ascending from the cursor;
	// spilled says standby tasks past them wait in the store only.
	held    []task.Record
	spilled bool
}

// Machine is the pump's state. It does no I/O.
type Machine struct {
	cfg     Config
	classes [messages.NumClasses]class
	rate    float64 // arrivals per second, EWMA
	last    time.Time
	arrived int
	ticking bool
	holding int64 // estimated bytes of the held tasks
}

// New returns a pump whose queues can take capacity[c] tasks. A pump that
// starts over an existing store (maxID > 0) first reloads every pending task
// with id <= maxID: that is how acknowledged, unfinished work is requeued
// after a restart.
func New(cfg Config, capacity [messages.NumClasses]int, maxID uint64) *Machine {
	m := &Machine{cfg: cfg}
	for c := range m.classes {
		m.classes[c].credit = capacity[c]
		if maxID > 0 {
			m.classes[c].standby = true
			m.classes[c].spilled = true
			m.classes[c].maxStandby = maxID
		}
	}
	return m
}

// Start returns the first effects (a refill tick when recovering).
func (m *Machine) Start(now time.Time) Effects {
	m.last = now
	return m.Tick(now)
}

// Standby is the number of tasks waiting in the store.
func (m *Machine) Standby() int64 {
	var n int64
	for c := range m.classes {
		n += m.classes[c].count
	}
	return n
}

// ClassStandby is one class's standby count.
func (m *Machine) ClassStandby(c messages.Class) int64 { return m.classes[c].count }

// Persisted takes tasks that intake has made durable.
func (m *Machine) Persisted(now time.Time, tasks []task.Record) Effects {
	var fx Effects
	m.arrived += len(tasks)
	if m.allFast(tasks) {
		// The common case: every task takes the fast path, in order, so the
		// batch goes on as it came (no copy).
		for i := range tasks {
			c := &m.classes[tasks[i].Class]
			c.credit--
			c.cursor = tasks[i].ID
		}
		fx.Forward = tasks
		m.arm(now, &fx)
		return fx
	}
	fx.Forward = make([]task.Record, 0, len(tasks))
	for _, t := range tasks {
		c := &m.classes[t.Class]
		switch {
		case t.ID <= c.cursor:
			// already read from the store by a refill
		case !c.standby && c.credit > 0:
			fx.Forward = append(fx.Forward, t)
			c.credit--
			c.cursor = t.ID
		default:
			c.standby = true
			c.count++
			if t.ID > c.maxStandby {
				c.maxStandby = t.ID
			}
			if size := heldSize(&t); !c.spilled && m.holding+size <= m.cfg.HoldBytes {
				c.held = append(c.held, t)
				m.holding += size
			} else {
				c.spilled = true
			}
		}
	}
	m.arm(now, &fx)
	return fx
}

// allFast reports whether every task takes the fast path: its class is not
// in standby and has credit for it, and it is past the cursor.
func (m *Machine) allFast(tasks []task.Record) bool {
	var need [messages.NumClasses]int
	for i := range tasks {
		t := &tasks[i]
		c := &m.classes[t.Class]
		if c.standby || t.ID <= c.cursor {
			return false
		}
		if need[t.Class]++; need[t.Class] > c.credit {
			return false
		}
	}
	return true
}

// heldSize estimates the memory a held record keeps alive, in bytes.
func heldSize(t *task.Record) int64 {
	n := 256 + len(t.Type) + len(t.Payload)
	for k, v := range t.Requirements {
		n += 48 + len(k) + len(v)
	}
	return int64(n)
}

// Credit returns n places of class c's queue; held tasks take them at once.
func (m *Machine) Credit(now time.Time, c messages.Class, n int) Effects {
	m.classes[c].credit += n
	var fx Effects
	m.release(c, &fx)
	m.arm(now, &fx)
	return fx
}

// release hands held tasks of class cl on while it has credit. When the
// last held task goes and none spilled, the class is back on the fast path.
func (m *Machine) release(cl messages.Class, fx *Effects) {
	c := &m.classes[cl]
	k := min(c.credit, len(c.held))
	if k <= 0 {
		return
	}
	fx.Forward = append(fx.Forward, c.held[:k]...)
	for i := range k {
		m.holding -= heldSize(&c.held[i])
	}
	c.cursor = c.held[k-1].ID
	c.credit -= k
	c.count = max(c.count-int64(k), 0)
	clear(c.held[:k]) // the records' memory goes with the last reference
	if c.held = c.held[k:]; len(c.held) == 0 {
		c.held = nil
		if !c.spilled {
			c.standby, c.count = false, 0
		}
	}
}

// Tick starts a refill round: each standby class may refill up to its credit.
func (m *Machine) Tick(now time.Time) Effects {
	m.ticking = false
	m.observe(now)
	var fx Effects
	for i := range m.classes {
		c := &m.classes[i]
		if !c.standby {
			continue
		}
		m.release(messages.Class(i), &fx)
		c.budget = c.credit
		m.load(messages.Class(i), &fx)
	}
	m.arm(now, &fx)
	return fx
}

// Loaded takes the result of a Load: tasks read from the store.
// exhausted is true when the store had fewer than the Limit asked for.
func (m *Machine) Loaded(now time.Time, cl messages.Class, tasks []task.Record, exhausted bool) Effects {
	var fx Effects
	c := &m.classes[cl]
	c.loading = false
	for _, t := range tasks {
		if t.ID <= c.cursor {
			continue
		}
		fx.Forward = append(fx.Forward, t)
		c.credit--
		c.budget--
		c.cursor = t.ID
		if c.count > 0 {
			c.count--
		}
	}
	if exhausted && c.maxStandby == c.mark {
		// Every standby task known when the read began was durable before
		// it, so the read saw them all: back to the fast path.
		c.standby, c.spilled = false, false
		c.count = 0
	} else if exhausted || len(tasks) == 0 {
		// Tasks went to standby while the read was out, or the read failed
		// (the shell reports no tasks, not exhausted): the next tick reads
		// again. Reading again at once would spin against a failing store.
		c.budget = 0
	} else {
		m.load(cl, &fx)
	}
	m.arm(now, &fx)
	return fx
}

func (m *Machine) load(cl messages.Class, fx *Effects) {
	c := &m.classes[cl]
	if c.loading || c.budget <= 0 || c.credit <= 0 || len(c.held) > 0 || !c.spilled {
		return // held tasks go first; with none spilled the store holds no more
	}
	n := min(c.budget, c.credit, m.cfg.BatchSize)
	c.loading = true
	c.mark = c.maxStandby
	fx.Loads = append(fx.Loads, Load{Class: cl, After: c.cursor, Limit: n})
}

// arm asks for a tick while some class waits in standby with credit.
func (m *Machine) arm(now time.Time, fx *Effects) {
	if m.ticking {
		return
	}
	for i := range m.classes {
		c := &m.classes[i]
		if c.standby && c.spilled && len(c.held) == 0 && c.credit > 0 && !c.loading {
			m.ticking = true
			fx.Tick = m.Interval()
			return
		}
	}
}

// observe folds the arrivals since the last observation into the rate.
func (m *Machine) observe(now time.Time) {
	dt := now.Sub(m.last).Seconds()
	if dt <= 0 {
		return
	}
	r := float64(m.arrived) / dt
	const alpha = 0.3
	m.rate = alpha*r + (1-alpha)*m.rate
	m.arrived = 0
	m.last = now
}

// Interval is the current refill interval: one batch's worth of arrivals,
// clamped to [MinInterval, MaxInterval]. A fast stream refills often; a
// trickle refills rarely but in the same batch size.
func (m *Machine) Interval() time.Duration {
	if m.rate <= 0 {
		return m.cfg.MaxInterval
	}
	d := time.Duration(float64(m.cfg.BatchSize) / m.rate * float64(time.Second))
	return max(m.cfg.MinInterval, min(m.cfg.MaxInterval, d))
}
