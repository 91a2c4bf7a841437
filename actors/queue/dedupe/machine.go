// Package dedupe removes duplicate tasks at queue insertion (S0.3).
//
// Tasks with the same digest form a group led by the first one (the
// original). A later task whose digest matches a group that is queued,
// running, or finished within the dedupe window does not run: it attaches to
// the group and receives the original's result (its own result record holds
// a copy of the output and names the original in AliasOf).
//
// Failure semantics: submissions attached while the original is live share
// its fate, success or permanent failure (they asked for the same work). A
// dead or cancelled original closes its group, so a duplicate submitted
// afterwards runs anew: resubmitting failed work is how a client retries it.
package dedupe

import (
	"fmt"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config tunes dedupe.
type Config struct {
	// Window is how long a finished task still absorbs duplicates. Default 10 min.
	Window time.Duration
	// TypeWindows, per task type, replace Window for that type's tasks
	// (0: a finished task of the type absorbs nothing). Default none.
	TypeWindows map[string]time.Duration
	// MaxFinished bounds the finished groups remembered; past it the oldest
	// are forgotten early (their digests can run again). Default 1,000,000.
	MaxFinished int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return Config{Window: 10 * time.Minute, MaxFinished: 1_000_000} }

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Window < 0:
		return fmt.Errorf("dedupe: Window must be >= 0, got %v", c.Window)
	case c.MaxFinished <= 0:
		return fmt.Errorf("dedupe: MaxFinished must be > 0, got %d", c.MaxFinished)
	}
	for typ, w := range c.TypeWindows {
		if typ == "" || w < 0 {
			return fmt.Errorf("dedupe: TypeWindows[%q] must name a type and be >= 0, got %v", typ, w)
		}
	}
	return nil
}

// MaxWindow is the longest window of any type: how long finished results
// must be kept, and remembered at start-up.
func (c Config) MaxWindow() time.Duration {
	w := c.Window
	for _, tw := range c.TypeWindows {
		w = max(w, tw)
	}
	return w
}

// windowOf is the window of a task type.
func (c Config) windowOf(typ string) time.Duration {
	if w, ok := c.TypeWindows[typ]; ok {
		return w
	}
	return c.Window
}

type member struct {
	id    uint64
	class messages.Class
}

// group is a live original and the duplicates attached to it.
type group struct {
	orig      uint64
	origClass messages.Class
	origGone  bool // the original was cancelled; members still want the result
	members   []member

	// cancelling: the dispatcher was asked to cancel the work (nobody wants
	// it any more); a duplicate arriving now starts a new group.
	cancelling bool
}

// doneGroup is an original that finished successfully within the window:
// a value with no pointer in it, so the window costs one map slot per digest
// (56 bytes and the map's control byte) and nothing for the collector to
// scan. Outputs, when there are any, are kept in Machine.outputs by the
// original's id.
type doneGroup struct {
	orig      uint64
	finished  int64
	attempts  int32
	hasOutput bool
}

type finishedRef struct {
	digest task.Digest
	at     int64
	orig   uint64
}

// Effects are what the shell must do after a step.
type Effects struct {
	Dispatch []task.Record            // originals to queue
	Credit   [messages.NumClasses]int // queue places returned for absorbed duplicates
	Persist  []task.Result            // results to make durable, then announce
	Cancel   []uint64                 // originals the dispatcher must cancel
}

// Machine is dedupe's state. It does no I/O.
type Machine struct {
	cfg       Config
	maxWindow time.Duration             // cfg.MaxWindow()
	groups    map[task.Digest]*group    // live groups: queued, leased, retrying
	done      map[task.Digest]doneGroup // finished successfully within the window
	outputs   map[uint64][]byte         // by original id: the outputs of done groups that have one
	spare     []*group                  // finished groups, for reuse
	live      map[uint64]task.Digest    // id of a live original or member → digest
	finished  []finishedRef             // FIFO by finish time, for eviction
	head      int
	dropped   map[uint64]bool   // cancelled while in standby: discard when the pump delivers them
	closing   map[uint64]*group // by original id: cancelling groups a new group replaced
	// Counters.
	Absorbed, Originals int64
}

// New returns an empty machine.
func New(cfg Config) *Machine {
	return &Machine{cfg: cfg, maxWindow: cfg.MaxWindow(), groups: map[task.Digest]*group{}, done: map[task.Digest]doneGroup{}, outputs: map[uint64][]byte{}, live: map[uint64]task.Digest{}, dropped: map[uint64]bool{}, closing: map[uint64]*group{}}
}

// remember keeps a successful original's result for the window.
func (m *Machine) remember(r *task.Result) {
	if old, ok := m.done[r.Digest]; ok && old.hasOutput {
		delete(m.outputs, old.orig) // an expired group the digest ran again after
	}
	m.done[r.Digest] = doneGroup{orig: r.ID, finished: r.FinishedAt, attempts: r.Attempts, hasOutput: len(r.Output) > 0}
	if len(r.Output) > 0 {
		m.outputs[r.ID] = r.Output
	}
}

// maxSpare bounds the finished groups kept for reuse.
const maxSpare = 4096

func (m *Machine) newGroup(orig uint64, class messages.Class) *group {
	if n := len(m.spare); n > 0 {
		g := m.spare[n-1]
		m.spare = m.spare[:n-1]
		g.orig, g.origClass = orig, class
		return g
	}
	return &group{orig: orig, origClass: class}
}

// release keeps a group nothing refers to any more for reuse.
func (m *Machine) release(g *group) {
	if len(m.spare) < maxSpare {
		clear(g.members)
		*g = group{members: g.members[:0]}
		m.spare = append(m.spare, g)
	}
}

// Seed remembers a result found in the store at start-up (within the window).
func (m *Machine) Seed(r task.Result) {
	if r.State != messages.StateDone || r.AliasOf != 0 {
		return
	}
	if _, ok := m.done[r.Digest]; ok {
		return
	}
	m.remember(&r)
	m.finished = append(m.finished, finishedRef{r.Digest, r.FinishedAt, r.ID})
}

// Tasks takes tasks from the pump.
func (m *Machine) Tasks(now time.Time, tasks []task.Record) Effects {
	var fx Effects
	ts := now.UnixNano()
	// Originals go on in order. While every task so far is one, the batch
	// itself is the Dispatch list (no copy); the first that is not starts a
	// copy of the ones before it.
	copied := false
	skip := func(i int) {
		if !copied {
			copied = true
			fx.Dispatch = make([]task.Record, i, len(tasks))
			copy(fx.Dispatch, tasks[:i])
		}
	}
	for i := range tasks {
		t := &tasks[i]
		if _, dup := m.live[t.ID]; dup {
			skip(i)
			continue // already here (a refill raced a fast-path hand-off)
		}
		if m.dropped[t.ID] {
			skip(i)
			delete(m.dropped, t.ID)
			fx.Credit[t.Class]++
			continue
		}
		g := m.groups[t.Digest]
		var dg doneGroup
		var done bool
		if g == nil {
			// A done group past the window is left for eviction: a new group
			// for the digest goes to m.groups, which is looked at first.
			dg, done = m.done[t.Digest]
			done = done && ts-dg.finished <= int64(m.cfg.windowOf(t.Type))
		}
		if g != nil && g.cancelling {
			// Its work is being cancelled: this submission must not share
			// that fate. Keep the old group for its result; start anew.
			m.closing[g.orig] = g
			g = nil
		}
		switch {
		case g == nil && !done:
			m.groups[t.Digest] = m.newGroup(t.ID, t.Class)
			m.live[t.ID] = t.Digest
			if copied {
				fx.Dispatch = append(fx.Dispatch, *t)
			}
			m.Originals++
		case g == nil: // done
			skip(i)
			fx.Credit[t.Class]++
			fx.Persist = append(fx.Persist, task.Result{
				ID: t.ID, Class: t.Class, Digest: t.Digest, State: messages.StateDone,
				Output: m.outputs[dg.orig], Attempts: dg.attempts, AliasOf: dg.orig, FinishedAt: ts,
			})
			m.Absorbed++
		default:
			skip(i)
			fx.Credit[t.Class]++
			g.members = append(g.members, member{t.ID, t.Class})
			m.live[t.ID] = t.Digest
			m.Absorbed++
		}
	}
	if !copied {
		fx.Dispatch = tasks
	}
	return fx
}

// task.Finished takes the terminal result of an original from the dispatcher and
// returns the records for it and every attached member.
func (m *Machine) Finished(now time.Time, results []task.Result) Effects {
	var fx Effects
	// While every result so far is persisted as it came, with no member,
	// the batch itself is the Persist list (no copy).
	copied := false
	deviate := func(i int) {
		if !copied {
			copied = true
			fx.Persist = make([]task.Result, i, len(results))
			copy(fx.Persist, results[:i])
		}
	}
	keep := func(r *task.Result) {
		if copied {
			fx.Persist = append(fx.Persist, *r)
		}
	}
	for i := range results {
		r := &results[i]
		g := m.groups[r.Digest]
		var closing *group
		if len(m.closing) > 0 {
			if closing = m.closing[r.ID]; closing != nil {
				g = closing // a newer group holds the digest: leave it alone
				delete(m.closing, r.ID)
			}
		}
		if g == nil || g.orig != r.ID {
			keep(r) // not tracked (cannot happen in one process): persist as is
			continue
		}
		delete(m.live, r.ID)
		if g.origGone || len(g.members) > 0 {
			deviate(i)
		}
		if !g.origGone {
			keep(r)
		}
		for _, mb := range g.members {
			delete(m.live, mb.id)
			fx.Persist = append(fx.Persist, task.Result{
				ID: mb.id, Class: mb.class, Digest: r.Digest, State: r.State, Output: r.Output,
				Error: r.Error, Attempts: r.Attempts, AliasOf: r.ID, FinishedAt: r.FinishedAt,
			})
		}
		if closing != nil {
			m.release(g)
			continue
		}
		delete(m.groups, r.Digest) // failed or cancelled work: a new submission runs anew
		if r.State == messages.StateDone && m.maxWindow > 0 {
			m.remember(r)
			m.finished = append(m.finished, finishedRef{r.Digest, r.FinishedAt, r.ID})
		}
		m.release(g)
	}
	if !copied {
		fx.Persist = results
	}
	m.evict(now)
	return fx
}

// Cancel cancels live tasks this machine knows. It returns the ids it did
// not know (the caller looks them up in the store) and the effects. A member
// is detached and cancelled at once. An original without members is
// cancelled through the dispatcher; one with members only loses its own
// submission: the work goes on for the members.
func (m *Machine) Cancel(now time.Time, ids []uint64) (unknown []uint64, fx Effects) {
	ts := now.UnixNano()
	for _, id := range ids {
		d, ok := m.live[id]
		if !ok {
			unknown = append(unknown, id)
			continue
		}
		if m.closing[id] != nil {
			continue // its cancel is already out
		}
		g := m.groups[d]
		if g.orig == id {
			if g.origGone || g.cancelling {
				continue
			}
			if len(g.members) == 0 {
				g.cancelling = true
				fx.Cancel = append(fx.Cancel, id)
				continue
			}
			g.origGone = true
			fx.Persist = append(fx.Persist, task.Result{ID: id, Class: g.origClass, Digest: d, State: messages.StateCancelled, FinishedAt: ts})
			continue
		}
		for i, mb := range g.members {
			if mb.id == id {
				g.members = append(g.members[:i], g.members[i+1:]...)
				delete(m.live, id)
				fx.Persist = append(fx.Persist, task.Result{ID: id, Class: mb.class, Digest: d, State: messages.StateCancelled, FinishedAt: ts})
				break
			}
		}
		if g.origGone && len(g.members) == 0 && !g.cancelling {
			g.cancelling = true
			fx.Cancel = append(fx.Cancel, g.orig) // nobody wants the work any more
		}
	}
	return unknown, fx
}

// Drop marks a standby task (not yet delivered by the pump) as cancelled:
// its cancelled result is already durable, so it must not be queued if a
// refill read it before the result removed it from the pending index.
func (m *Machine) Drop(id uint64) { m.dropped[id] = true }

// State reports whether id is a live member (attached duplicate) or original.
func (m *Machine) State(id uint64) (attached, live bool) {
	d, ok := m.live[id]
	if !ok {
		return false, false
	}
	if m.closing[id] != nil {
		return false, true
	}
	return m.groups[d].orig != id, true
}

// Tick forgets finished groups past the window.
func (m *Machine) Tick(now time.Time) { m.evict(now) }

func (m *Machine) evict(now time.Time) {
	cutoff := now.UnixNano() - int64(m.maxWindow)
	for m.head < len(m.finished) {
		f := m.finished[m.head]
		if f.at >= cutoff && len(m.finished)-m.head <= m.cfg.MaxFinished {
			break
		}
		if g, ok := m.done[f.digest]; ok && g.orig == f.orig {
			delete(m.done, f.digest)
		}
		delete(m.outputs, f.orig)
		m.finished[m.head] = finishedRef{}
		m.head++
	}
	if m.head > 1024 && m.head*2 > len(m.finished) {
		m.finished = append(m.finished[:0:0], m.finished[m.head:]...)
		m.head = 0
	}
}

// Len is the number of digests remembered (live and finished).
func (m *Machine) Len() int { return len(m.groups) + len(m.done) }
