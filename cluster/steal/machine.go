// Package steal is work stealing between cluster nodes: an idle node (its
// queues empty, executor slots free) leases tasks from the most loaded peer
// (by gossiped queue depth) as the pseudo-executor "steal/<node>" on that
// peer's dispatcher, runs them on its own executors, and reports the
// results to the peer under the peer's leases.
//
// Nothing runs twice that must not: the peer keeps every stolen task
// leased to steal/<node> and fences late results as for any executor; the
// stealer heartbeats those leases while its executors run them. If the
// stealing node dies the peer's lease expires and the task runs again
// there (at least once, as with any executor); a task whose result is
// durable at its owner is never granted again. Stealing is bounded: a node
// steals only while its own queues are empty, registers at most MaxSlots
// slots at a peer, and only from a peer with at least MinDepth queued tasks.
//
// Machine is the pure decision logic; actor.go is its protoactor shell.
package steal

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config tunes stealing.
type Config struct {
	// Every is how often the node checks whether to steal. Default 200 ms.
	Every time.Duration
	// MinDepth is the queued tasks (all classes) a peer must report before
	// it is stolen from, unless its executors have no free slot (then any
	// queued task qualifies). Default 64.
	MinDepth int64
	// MaxSlots caps the slots the stealer registers at a peer (what the
	// peer grants it at once is about twice this). Default 256.
	MaxSlots int32
	// Heartbeat renews the peer's leases at least this often while stolen
	// tasks run; the peer's own hint (LeaseTTL/5) wins when shorter.
	// Default 1 s.
	Heartbeat time.Duration
	// Token is presented when registering at a peer (members share the
	// cluster's --token; node.Start sets it from node.Config.Token).
	Token string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Every: 200 * time.Millisecond, MinDepth: 64, MaxSlots: 256, Heartbeat: time.Second}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Every <= 0:
		return fmt.Errorf("steal: Every must be > 0, got %v", c.Every)
	case c.MinDepth <= 0:
		return fmt.Errorf("steal: MinDepth must be > 0, got %d", c.MinDepth)
	case c.MaxSlots <= 0:
		return fmt.Errorf("steal: MaxSlots must be > 0, got %d", c.MaxSlots)
	case c.Heartbeat <= 0:
		return fmt.Errorf("steal: Heartbeat must be > 0, got %v", c.Heartbeat)
	}
	return nil
}

// Local is this node's state as the dispatcher reports it.
type Local struct {
	Queued    int
	FreeSlots int
	Types     []string
	AnyType   bool
}

// Peer is another member as gossip reports it.
type Peer struct {
	Name      string
	Remote    string
	Queued    int64
	FreeSlots int32 // its executors' free slots
}

// loaded reports whether p needs help: a deep queue, or any queue its own
// executors have no slot for (none attached, or all busy).
func (m *Machine) loaded(p *Peer) bool {
	return p.Queued >= m.cfg.MinDepth || p.Queued > 0 && p.FreeSlots == 0
}

// Send is a message for a peer's dispatcher.
type Send struct {
	Peer string
	Msg  any
}

// Effects are what the shell must do.
type Effects struct {
	Sends   []Send
	Enqueue []task.Record // stolen tasks for the local dispatcher
	Cancel  []uint64      // stolen tasks the peer revoked (or lost)
}

type peer struct {
	remote                          string
	registered, registering, pulled bool
	pending                         []messages.Result
	lastSent                        time.Time
	heartbeat                       time.Duration
}

// Machine decides when and from whom to steal. It does no I/O.
type Machine struct {
	cfg     Config
	id      string // executor id at peers: "steal/<node>"
	classOf func(int32) messages.Class
	peers   map[string]*peer
	held    map[uint64]string // stolen task → its owner
	// Stolen counts tasks taken from peers.
	Stolen int64
}

// New returns a stealer for node self; classOf maps a priority to its class.
func New(cfg Config, self string, classOf func(int32) messages.Class) *Machine {
	return &Machine{cfg: cfg, id: messages.StealExecutorPrefix + self, classOf: classOf, peers: map[string]*peer{}, held: map[uint64]string{}}
}

// ExecutorID is the stealer's executor id at its peers.
func (m *Machine) ExecutorID() string { return m.id }

// Held is the number of stolen tasks not yet reported.
func (m *Machine) Held() int { return len(m.held) }

// Tick renews leases that need it, forgets peers that left, and steals when
// this node is idle and a peer is loaded.
func (m *Machine) Tick(now time.Time, local Local, peers []Peer) Effects {
	var fx Effects
	live := map[string]Peer{}
	for _, p := range peers {
		live[p.Name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(m.peers)) {
		if _, ok := live[name]; !ok {
			m.forget(name, &fx)
			continue
		}
		ps := m.peers[name]
		// Registered peers hear from us every heartbeat: it renews the
		// leases of stolen tasks and keeps the registration (a peer
		// forgets an executor silent for its lease TTL).
		if (ps.registered || ps.pending != nil) && now.Sub(ps.lastSent) >= ps.heartbeat {
			m.heartbeat(now, name, ps, &fx)
		}
	}
	idle := local.Queued == 0 && local.FreeSlots > 0 && (local.AnyType || len(local.Types) > 0)
	if !idle {
		return fx
	}
	var best *Peer
	for i := range peers {
		p := &peers[i]
		if m.loaded(p) && (best == nil || p.Queued > best.Queued) {
			best = p
		}
	}
	if best == nil {
		return fx
	}
	ps := m.peers[best.Name]
	if ps == nil || ps.remote != best.Remote {
		ps = &peer{remote: best.Remote, heartbeat: m.cfg.Heartbeat}
		m.peers[best.Name] = ps
	}
	switch {
	case !ps.registered && !ps.registering:
		ps.registering = true
		var types []string
		if !local.AnyType {
			types = local.Types
		}
		fx.Sends = append(fx.Sends, Send{best.Name, &messages.Register{Version: messages.ProtocolVersion,
			ExecutorID: m.id, Types: types, Slots: min(int32(local.FreeSlots), m.cfg.MaxSlots), Token: m.cfg.Token}})
	case ps.registered && !ps.pulled:
		// One pull at a time per peer; a pull the peer parks (nothing
		// queued any more) is answered when work arrives there.
		ps.pulled = true
		ps.lastSent = now
		fx.Sends = append(fx.Sends, Send{best.Name, &messages.Pull{ExecutorID: m.id, Free: int32(local.FreeSlots),
			Results: ps.pending, Held: m.heldBy(best.Name)}})
		ps.pending = nil
	}
	return fx
}

// Remote is the dispatcher address of a peer being stolen from.
func (m *Machine) Remote(name string) string {
	if ps := m.peers[name]; ps != nil {
		return ps.remote
	}
	return ""
}

func (m *Machine) heartbeat(now time.Time, name string, ps *peer, fx *Effects) {
	ps.lastSent = now
	fx.Sends = append(fx.Sends, Send{name, &messages.Heartbeat{ExecutorID: m.id, Results: ps.pending, Held: m.heldBy(name)}})
	ps.pending = nil
}

// forget drops a peer that left: its stolen tasks still queued or running
// here are cancelled (their owner requeues them when it comes back; with
// a Pebble store its leases are not durable).
func (m *Machine) forget(name string, fx *Effects) {
	for id, owner := range m.held {
		if owner == name {
			delete(m.held, id)
			fx.Cancel = append(fx.Cancel, id)
		}
	}
	slices.Sort(fx.Cancel)
	delete(m.peers, name)
}

func (m *Machine) heldBy(name string) []uint64 {
	var out []uint64
	for id, owner := range m.held {
		if owner == name {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Registered takes a peer's answer to Register.
func (m *Machine) Registered(name string, r *messages.Registered) {
	ps := m.peers[name]
	if ps == nil {
		return
	}
	ps.registering = false
	if r.Err != nil {
		return
	}
	ps.registered = true
	if hb := time.Duration(r.HeartbeatMillis) * time.Millisecond; hb > 0 && hb < ps.heartbeat {
		ps.heartbeat = hb
	}
}

// Grant takes a peer's grant: its tasks go to the local dispatcher, its
// revocations cancel stolen tasks here.
func (m *Machine) Grant(name string, g *messages.Grant) Effects {
	var fx Effects
	ps := m.peers[name]
	if ps == nil {
		// A grant from a peer already forgotten: nobody would report its
		// results, so do not run it; its leases expire at the peer.
		return fx
	}
	ps.pulled = false
	if g.Err != nil {
		// The peer forgot us (restart, or we were silent too long): its
		// leases of our stolen tasks are gone, so are the tasks for us.
		ps.registered = false
		for _, id := range m.heldBy(name) {
			delete(m.held, id)
			fx.Cancel = append(fx.Cancel, id)
		}
		return fx
	}
	for _, t := range g.Tasks {
		m.held[t.ID] = name
		m.Stolen++
		fx.Enqueue = append(fx.Enqueue, task.Record{ID: t.ID, Type: t.Type, Payload: t.Payload, Priority: t.Priority,
			Class: m.classOf(t.Priority), Attempts: t.Attempt - 1, MaxAttempts: t.Attempt, TimeoutMillis: t.TimeoutMillis})
	}
	for _, id := range g.Cancel {
		if m.held[id] == name {
			delete(m.held, id)
			fx.Cancel = append(fx.Cancel, id)
		}
	}
	return fx
}

// Results takes results of stolen tasks from the local dispatcher; they go
// to their owners at once.
func (m *Machine) Results(now time.Time, rs []messages.Result) Effects {
	var fx Effects
	touched := map[string]bool{}
	for _, r := range rs {
		name, ok := m.held[r.TaskID]
		if !ok {
			continue // revoked meanwhile: the owner fences it anyway
		}
		delete(m.held, r.TaskID)
		if ps := m.peers[name]; ps != nil {
			ps.pending = append(ps.pending, r)
			touched[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(touched)) {
		m.heartbeat(now, name, m.peers[name], &fx)
	}
	return fx
}
