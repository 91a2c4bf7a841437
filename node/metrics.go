package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/hosts/table"
)

// What the metrics collector and /readyz ask a node (see docs/metrics.md).
// Everything is asked of the actors that own it, once per scrape: nothing
// here is counted on the tasks' path.

// ErrNotReady is wrapped by Ready's errors.
var ErrNotReady = errors.New("node: not ready")

// Ready reports whether the node serves: it has not stopped, its store
// answers a read (a PostgreSQL store: the server answers), and, as a cluster
// member, its routing view lists it with a remote address and partitions
// (member.Join returns once the seeds let it in, so a started member has
// joined; the check keeps that so should the wiring change). The error
// says which is not so.
func (n *Node) Ready(ctx context.Context) error {
	select {
	case <-n.stopped:
		return fmt.Errorf("%w: the node is stopping", ErrNotReady)
	default:
	}
	if _, err := n.store.MaxID(ctx); err != nil {
		return fmt.Errorf("%w: the store does not answer: %v", ErrNotReady, err)
	}
	if d := n.cfg.Cluster; d != nil {
		v := d.View()
		if v.Remote(v.Self) == "" {
			return fmt.Errorf("%w: not a member of the cluster yet (%d members known)", ErrNotReady, len(v.Members))
		}
		if v.Owned()[v.Self] == 0 {
			return fmt.Errorf("%w: owns no partition yet", ErrNotReady)
		}
	}
	return nil
}

// RouterStats asks the cluster routers for their forwarding counts, by the
// name they route (intake, results, dedupe); nil on a single node.
func (n *Node) RouterStats(ctx context.Context) (map[string]route.RouterStats, error) {
	out := map[string]route.RouterStats{}
	for i, name := range []string{"intake", "results", "dedupe"} {
		pid := n.routerPIDs[i]
		if pid == nil {
			continue
		}
		res, err := n.system.Root.RequestFuture(pid, route.StatsRequest{}, timeoutOf(ctx)).Result()
		if err != nil {
			return nil, fmt.Errorf("node: router %s stats: %w", name, err)
		}
		out[name] = res.(route.RouterStats)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// HostStatuses are the hosts' last reports in the host instruction table
// (nil when the host bridge is off).
func (n *Node) HostStatuses(ctx context.Context) ([]table.HostStatus, error) {
	if n.hosts == nil {
		return nil, nil
	}
	return n.hosts.tbl.Statuses(ctx)
}

// Clustered reports whether the node is a cluster member.
func (n *Node) Clustered() bool { return n.cfg.Cluster != nil }

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }
