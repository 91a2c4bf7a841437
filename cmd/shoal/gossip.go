package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shoalrt/shoal/cluster/membership"
	"github.com/shoalrt/shoal/cluster/node"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
)

// gossipFlags are the `shoal node` flags for cluster membership.
type gossipFlags struct {
	bind, join, key string
	fast            bool
}

// start joins the cluster when --gossip is set; it returns nil when gossip
// is off.
func (g gossipFlags) start(name, remote string, log *slog.Logger) (*membership.Membership, error) {
	if g.bind == "" {
		if g.join != "" || g.key != "" {
			return nil, fmt.Errorf("--join and --gossip-key need --gossip host:port")
		}
		return nil, nil
	}
	var key []byte
	if g.key != "" {
		k, err := base64.StdEncoding.DecodeString(g.key)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key: not base64: %w", err)
		}
		key = k
	}
	var seeds []string
	for _, s := range strings.Split(g.join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return membership.Start(membership.Config{Name: name, Bind: g.bind, Remote: remote, Seeds: seeds, Key: key, Fast: g.fast, Logger: log})
}

// members converts the membership view for status.
func members(m *membership.Membership, d *route.Directory) func() []messages.MemberStatus {
	return func() []messages.MemberStatus {
		owned := d.View().Owned()
		var out []messages.MemberStatus
		for _, mb := range m.Members() {
			s := messages.MemberStatus{Name: mb.Name, Gossip: mb.Gossip, Remote: mb.Remote, Partitions: int32(owned[mb.Name])}
			if l := mb.Load; l != nil {
				s.Queued, s.Standby, s.LoadAt = l.Queued, l.Standby, l.At
				s.Executors, s.FreeSlots, s.DrainRate = l.Executors, l.FreeSlots, l.DrainRate
			}
			out = append(out, s)
		}
		return out
	}
}

// publishLoad gossips the node's queue depths, free executor slots and
// drain rate every interval until ctx ends.
func publishLoad(ctx context.Context, n *node.Node, m *membership.Membership, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	var rate route.Rate
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, every)
		st, err := n.Status(qctx)
		cancel()
		if err != nil {
			continue
		}
		now := time.Now()
		l := route.LoadOf(st, rate.Observe(now, route.Finished(st)))
		l.At = now.UnixMilli()
		if err := m.Publish(l); err != nil {
			log.Warn("load gossip failed", "err", err)
		}
	}
}
