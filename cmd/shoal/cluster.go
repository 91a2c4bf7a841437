package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/shoalrt/shoal/cluster/membership"
	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/cluster/steal"
)

// clusterDirectory makes the routing directory of a node that joined the
// cluster: it refuses a name whose node tag another member already has, and
// starts from the members seen now.
func clusterDirectory(name, remote string, m *membership.Membership, log *slog.Logger) (*route.Directory, error) {
	var names []string
	for _, mb := range m.Members() {
		names = append(names, mb.Name)
	}
	if err := route.CheckTags(name, names); err != nil {
		return nil, err
	}
	d := route.NewDirectory(name, remote, partition.DefaultCount, log)
	d.Update(routeMembers(m))
	return d, nil
}

func routeMembers(m *membership.Membership) []route.Member {
	var out []route.Member
	for _, mb := range m.Members() {
		out = append(out, route.Member{Name: mb.Name, Remote: mb.Remote})
	}
	return out
}

// followMembers feeds membership changes to the directory until ctx ends.
// Polling every interval keeps membership free of routing concerns; a
// change reaches routing within one interval.
func followMembers(ctx context.Context, m *membership.Membership, d *route.Directory, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.Update(routeMembers(m))
	}
}

// stealPeers lists the other members with their gossiped queue depth, for
// the work stealer.
func stealPeers(m *membership.Membership, self string) func() []steal.Peer {
	return func() []steal.Peer {
		var out []steal.Peer
		for _, mb := range m.Members() {
			if mb.Name == self || mb.Load == nil || mb.Remote == "" {
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
}
