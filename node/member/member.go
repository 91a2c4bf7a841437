// Package member makes a node a cluster member: memberlist membership
// (cluster/membership), the routing directory fed from it (cluster/route),
// load gossip from the node's status, and the peer list the work stealer
// reads (cluster/steal). `shoal node --gossip` and the cluster benchmarks
// use it the same way:
//
//	m, err := member.Join(member.Config{Name: "n1", Gossip: "127.0.0.1:7946"}, system.Address())
//	m.Configure(&nodeCfg)
//	n, err := node.Start(ctx, nodeCfg, system, codec)
//	go m.Run(ctx, n)
//	defer m.Leave()
package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/shoalrt/shoal/cluster/membership"
	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/cluster/steal"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
)

// Config configures a member.
type Config struct {
	// Name is the node's unique name (also its task-id tag). Required.
	Name string
	// Gossip is the memberlist bind address, host:port (port 0: any).
	Gossip string
	// Seeds are gossip addresses of members to join; empty for the first.
	Seeds []string
	// Key encrypts gossip (16, 24 or 32 bytes); empty: none.
	Key []byte
	// Fast selects failure detection for one machine or a LAN (~1 s).
	Fast bool
	// NoSteal turns work stealing off.
	NoSteal bool
	// LoadEvery is how often the node's load is gossiped. Default 500 ms.
	LoadEvery time.Duration
	// FollowEvery is how often membership is read into the routing
	// directory. Default 100 ms.
	FollowEvery time.Duration
	// Logger receives membership and routing logs. Default: discard.
	Logger *slog.Logger
	// JoinRetry keeps trying the seeds for this long, then re-joins them
	// when members are missing (membership.Config.JoinRetry). 0: one try.
	JoinRetry time.Duration
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid member config")

// Validate names the first bad field. Zero durations take their defaults.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: Name must be set (the node's unique name in the cluster)", ErrInvalidConfig)
	case len(c.Key) != 0 && len(c.Key) != 16 && len(c.Key) != 24 && len(c.Key) != 32:
		return fmt.Errorf("%w: Key must be 16, 24 or 32 bytes, got %d", ErrInvalidConfig, len(c.Key))
	case c.LoadEvery < 0:
		return fmt.Errorf("%w: LoadEvery must be >= 0 (0: 500 ms), got %v", ErrInvalidConfig, c.LoadEvery)
	case c.FollowEvery < 0:
		return fmt.Errorf("%w: FollowEvery must be >= 0 (0: 100 ms), got %v", ErrInvalidConfig, c.FollowEvery)
	case c.JoinRetry < 0:
		return fmt.Errorf("%w: JoinRetry must be >= 0 (0: one try), got %v", ErrInvalidConfig, c.JoinRetry)
	}
	if c.Gossip != "" {
		if _, _, err := net.SplitHostPort(c.Gossip); err != nil {
			return fmt.Errorf("%w: Gossip %q must be host:port: %v", ErrInvalidConfig, c.Gossip, err)
		}
	}
	for i, s := range c.Seeds {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("%w: Seeds[%d] is empty; give a gossip address (host:port) of a member", ErrInvalidConfig, i)
		}
	}
	return nil
}

// Member is a node's cluster membership.
type Member struct {
	cfg Config
	ml  *membership.Membership
	dir *route.Directory
}

// Join starts membership (joining the seeds) and the routing directory.
// remote is the node's protoactor address. It refuses a name whose node tag
// a live member already has.
func Join(cfg Config, remote string) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LoadEvery <= 0 {
		cfg.LoadEvery = 500 * time.Millisecond
	}
	if cfg.FollowEvery <= 0 {
		cfg.FollowEvery = 100 * time.Millisecond
	}
	ml, err := membership.Start(membership.Config{Name: cfg.Name, Bind: cfg.Gossip, Remote: remote, Seeds: cfg.Seeds,
		Key: cfg.Key, Fast: cfg.Fast, Logger: cfg.Logger, JoinRetry: cfg.JoinRetry})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, mb := range ml.Members() {
		names = append(names, mb.Name)
	}
	if err := route.CheckTags(cfg.Name, names); err != nil {
		_ = ml.Leave(time.Second)
		return nil, err
	}
	m := &Member{cfg: cfg, ml: ml, dir: route.NewDirectory(cfg.Name, remote, partition.DefaultCount, cfg.Logger)}
	m.dir.Update(m.routeMembers())
	return m, nil
}

// Addr is the gossip address.
func (m *Member) Addr() string { return m.ml.Addr() }

// Directory is the routing directory.
func (m *Member) Directory() *route.Directory { return m.dir }

// Configure makes a node configuration a cluster member's: routing,
// members in status, and (unless NoSteal) work stealing.
func (m *Member) Configure(c *node.Config) {
	c.Cluster = m.dir
	c.Members = m.statuses
	if !m.cfg.NoSteal {
		c.StealFrom = m.stealPeers
	}
}

// Run gossips the node's load and follows membership into the directory
// until ctx ends.
func (m *Member) Run(ctx context.Context, n *node.Node) {
	load := time.NewTicker(m.cfg.LoadEvery)
	defer load.Stop()
	follow := time.NewTicker(m.cfg.FollowEvery)
	defer follow.Stop()
	var rate route.Rate
	for {
		select {
		case <-ctx.Done():
			return
		case <-follow.C:
			m.dir.Update(m.routeMembers())
		case <-load.C:
			qctx, cancel := context.WithTimeout(ctx, m.cfg.LoadEvery)
			st, err := n.Status(qctx)
			cancel()
			if err != nil {
				continue
			}
			now := time.Now()
			l := route.LoadOf(st, rate.Observe(now, route.Finished(st)))
			l.At = now.UnixMilli()
			if err := m.ml.Publish(l); err != nil {
				m.cfg.Logger.Warn("load gossip failed", "err", err)
			}
		}
	}
}

// Leave tells the others this node is going and stops gossip.
func (m *Member) Leave() error { return m.ml.Leave(2 * time.Second) }

func (m *Member) routeMembers() []route.Member {
	var out []route.Member
	for _, mb := range m.ml.Members() {
		out = append(out, route.Member{Name: mb.Name, Remote: mb.Remote})
	}
	return out
}

// statuses is the cluster view for status: members, partitions owned,
// gossiped queue depths, executors, free slots, drain rate.
func (m *Member) statuses() []messages.MemberStatus {
	owned := m.dir.View().Owned()
	var out []messages.MemberStatus
	for _, mb := range m.ml.Members() {
		s := messages.MemberStatus{Name: mb.Name, Gossip: mb.Gossip, Remote: mb.Remote, Partitions: int32(owned[mb.Name])}
		if l := mb.Load; l != nil {
			s.Queued, s.Standby, s.LoadAt = l.Queued, l.Standby, l.At
			s.Executors, s.FreeSlots, s.DrainRate = l.Executors, l.FreeSlots, l.DrainRate
		}
		out = append(out, s)
	}
	return out
}

// stealPeers lists the other members with their gossiped queue depth and
// free slots, for the work stealer.
func (m *Member) stealPeers() []steal.Peer {
	var out []steal.Peer
	for _, mb := range m.ml.Members() {
		if mb.Name == m.cfg.Name || mb.Load == nil || mb.Remote == "" {
			continue
		}
		var q int64
		for _, c := range mb.Load.Queued {
			q += c
		}
		out = append(out, steal.Peer{Name: mb.Name, Remote: mb.Remote, Queued: q, FreeSlots: mb.Load.FreeSlots})
	}
	return out
}
