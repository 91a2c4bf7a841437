// Package membership is shoal's view of the cluster: hashicorp/memberlist
// for membership and failure detection (used directly, not through
// protoactor's cluster package), each member's protoactor address in its
// node metadata, and a small load report per node piggybacked on gossip.
//
// Routing (cluster/route), work stealing (cluster/steal) and the wiring of
// both into a node (cluster/member) build on it: see docs/cluster.md.
package membership

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/shoalrt/shoal/messages"
)

// Config configures a member.
type Config struct {
	// Name is the node's unique name in the cluster. Required.
	Name string
	// Bind is the gossip address, host:port (port 0: any free port).
	Bind string
	// Remote is this node's protoactor address, told to peers in metadata.
	Remote string
	// Seeds are gossip addresses of members to join (may be empty: first node).
	Seeds []string
	// Key encrypts gossip (AES, 16, 24 or 32 bytes). Members with another
	// key, or none, cannot join. Empty: no encryption.
	Key []byte
	// Fast selects failure detection tuned for one machine or LAN
	// (probe 200 ms, suspicion multiplier 2: a dead node is declared in about
	// a second); otherwise memberlist's LAN defaults (about 5 s).
	Fast bool
	// Logger receives memberlist's logs. Default: discard.
	Logger *slog.Logger
	// JoinRetry, when > 0, keeps retrying the join (every second) for up to
	// this long while no seed answers (containers starting in any order),
	// and afterwards re-joins the seeds every RejoinEvery while fewer
	// members than seeds + 1 are alive, so that a partition longer than
	// memberlist's gossip-to-the-dead time (15 s fast, 30 s LAN) heals.
	// 0: one attempt; failure is an error.
	JoinRetry time.Duration
	// RejoinEvery is the re-join period of JoinRetry. Default 5 s.
	RejoinEvery time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("membership: Name must be set")
	case len(c.Key) != 0 && len(c.Key) != 16 && len(c.Key) != 24 && len(c.Key) != 32:
		return fmt.Errorf("membership: Key must be 16, 24 or 32 bytes, got %d", len(c.Key))
	}
	if _, _, err := splitHostPort(c.Bind); err != nil {
		return fmt.Errorf("membership: Bind %q: %w", c.Bind, err)
	}
	return nil
}

// Member is one live member as this node sees it.
type Member struct {
	Name   string
	Gossip string // host:port of its gossip listener
	Remote string // its protoactor address
	Load   *messages.NodeLoad
}

type meta struct {
	Remote string `msgpack:"remote"`
}

// Membership is a running member.
type Membership struct {
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	reg   *messages.Registry
	log   *slog.Logger

	mu    sync.Mutex
	loads map[string]*messages.NodeLoad
	meta  []byte

	stop     chan struct{} // closed by Leave and Shutdown: ends rejoin
	stopOnce sync.Once
}

// Start creates the member and joins the seeds (if any).
func Start(cfg Config) (*Membership, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mb, err := msgpack.Marshal(meta{Remote: cfg.Remote})
	if err != nil {
		return nil, err
	}
	if len(mb) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("membership: remote address %q too long for node metadata", cfg.Remote)
	}
	m := &Membership{reg: messages.Default(), log: cfg.Logger, loads: map[string]*messages.NodeLoad{}, meta: mb}
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult, mc.GossipInterval = 200*time.Millisecond, 100*time.Millisecond, 2, 50*time.Millisecond
	}
	host, port, _ := splitHostPort(cfg.Bind)
	mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertisePort = cfg.Name, host, port, port
	mc.SecretKey = cfg.Key
	mc.Delegate, mc.Events = (*delegate)(m), (*events)(m)
	mc.Logger = log.New(&slogWriter{cfg.Logger}, "", 0)
	// The queue exists before memberlist starts gossiping (GetBroadcasts
	// reads it from memberlist's goroutines as soon as Create returns).
	var created atomic.Pointer[memberlist.Memberlist]
	m.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: mc.RetransmitMult, NumNodes: func() int {
		if ml := created.Load(); ml != nil {
			return ml.NumMembers()
		}
		return 1
	}}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: start on %s: %w", cfg.Bind, err)
	}
	created.Store(ml)
	m.ml = ml
	m.stop = make(chan struct{})
	if len(cfg.Seeds) > 0 {
		deadline := time.Now().Add(cfg.JoinRetry)
		for {
			_, err := ml.Join(cfg.Seeds)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = ml.Shutdown()
				return nil, fmt.Errorf("membership: join %v: %w", cfg.Seeds, err)
			}
			cfg.Logger.Info("join failed; retrying", "seeds", cfg.Seeds, "error", err)
			time.Sleep(time.Second)
		}
		if cfg.JoinRetry > 0 {
			go m.rejoin(cfg)
		}
	}
	return m, nil
}

// rejoin re-joins the seeds while fewer members than seeds + 1 are alive.
func (m *Membership) rejoin(cfg Config) {
	every := cfg.RejoinEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if m.ml.NumMembers() >= len(cfg.Seeds)+1 {
			continue
		}
		if n, err := m.ml.Join(cfg.Seeds); err != nil {
			cfg.Logger.Debug("rejoin", "seeds", cfg.Seeds, "reached", n, "error", err)
		} else {
			cfg.Logger.Info("rejoined seeds", "reached", n, "members", m.ml.NumMembers())
		}
	}
}

// Addr is this member's gossip address (host:port).
func (m *Membership) Addr() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members lists the live members, this one included, sorted by name.
func (m *Membership) Members() []Member {
	// memberlist's node list first, without m.mu: memberlist calls
	// NotifyLeave (which takes m.mu) while holding its node lock, so
	// holding m.mu while asking for that lock deadlocks (seen in the Docker
	// cluster test: a restarted node stopped answering for good).
	nodes := m.ml.Members()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Member
	for _, n := range nodes {
		var md meta
		_ = msgpack.Unmarshal(n.Meta, &md)
		out = append(out, Member{Name: n.Name, Gossip: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), Remote: md.Remote, Load: m.loads[n.Name]})
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Publish gossips this node's load; a newer report replaces an older one
// still in the queue (latest wins), so the queue never grows.
func (m *Membership) Publish(l messages.NodeLoad) error {
	l.Node = m.ml.LocalNode().Name
	_, b, err := m.reg.Encode(&l)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.loads[l.Node] = &l
	m.mu.Unlock()
	m.queue.QueueBroadcast(&loadBroadcast{node: l.Node, msg: b})
	return nil
}

// Leave tells the others this node is going, then stops.
func (m *Membership) Leave(timeout time.Duration) error {
	m.stopOnce.Do(func() { close(m.stop) })
	err := m.ml.Leave(timeout)
	return errors.Join(err, m.ml.Shutdown())
}

// Shutdown stops without leaving: peers detect it as failed.
func (m *Membership) Shutdown() error {
	m.stopOnce.Do(func() { close(m.stop) })
	return m.ml.Shutdown()
}

type loadBroadcast struct {
	node string
	msg  []byte
}

func (b *loadBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*loadBroadcast)
	return ok && ob.node == b.node
}
func (b *loadBroadcast) Message() []byte { return b.msg }
func (b *loadBroadcast) Finished()       {}

type delegate Membership

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	msg, err := d.reg.Decode("shoal.NodeLoad", b)
	if err != nil {
		d.log.Warn("dropped undecodable gossip", "err", err)
		return
	}
	l := msg.(*messages.NodeLoad)
	d.mu.Lock()
	if old := d.loads[l.Node]; old == nil || old.At <= l.At {
		d.loads[l.Node] = l
	}
	d.mu.Unlock()
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *delegate) LocalState(join bool) []byte            { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

type events Membership

func (e *events) NotifyJoin(n *memberlist.Node)   { e.log.Info("member joined", "member", n.Name) }
func (e *events) NotifyUpdate(n *memberlist.Node) {}

// NotifyLeave fires for members that left and for members declared dead.
func (e *events) NotifyLeave(n *memberlist.Node) {
	e.log.Info("member gone", "member", n.Name)
	e.mu.Lock()
	delete(e.loads, n.Name)
	e.mu.Unlock()
}

// slogWriter adapts memberlist's *log.Logger output to slog.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("memberlist", "msg", string(p))
	return len(p), nil
}

var _ io.Writer = (*slogWriter)(nil)

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, port, nil
}
