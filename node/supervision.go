package node

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/shoalrt/shoal/actors/supervisor"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// The node's server supervisor (actors/supervisor, docs/supervision.md):
// health checks, eviction, restarts of launched executor processes,
// alerts, sleep. It runs on every node.

const nameSupervisor = "shoal-supervisor"

// LaunchedID is the executor id of the i-th (from 1) executor process a
// node named node launches.
func LaunchedID(node string, i int) string { return fmt.Sprintf("%s-exec-%d", node, i) }

func (n *Node) supervisorPID() *actor.PID { return actor.NewPID(n.system.Address(), nameSupervisor) }

func (n *Node) spawnSupervisor(spawn func(*actor.Props, string) error) error {
	cfg := n.cfg.Supervisor
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 4 * n.cfg.Dispatch.LeaseTTL / 5 // four heartbeats: well before the lease expires, yet patient with a loaded host
	}
	d := supervisor.Deps{Dispatch: n.pids.Dispatch, Launcher: n.cfg.Launcher, Sinks: n.cfg.AlertSinks, Logger: n.cfg.Logger, Now: n.cfg.Now}
	if n.cfg.Launcher != nil {
		for i := range n.cfg.Executors {
			d.Launch = append(d.Launch, LaunchedID(n.cfg.Name, i+1))
		}
	}
	if n.codec != nil {
		n.watchEndpoints()
	}
	// Not through spawn: its children are executor actors, whose codec
	// middlewares come with their own props.
	_, err := n.system.Root.SpawnNamed(supervisor.Props(cfg, n.cfg.Name, d), nameSupervisor)
	if err != nil {
		return fmt.Errorf("node: spawn %s: %w", nameSupervisor, err)
	}
	return nil
}

// watchEndpoints evicts the executors of a process whose connection is
// lost (protoactor remote publishes EndpointTerminatedEvent when the
// stream to an address breaks): their leases are requeued at once rather
// than when the lease or the health check times out.
func (n *Node) watchEndpoints() {
	root, d := n.system.Root, n.pids.Dispatch
	n.endpointSub = n.system.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*remote.EndpointTerminatedEvent); ok {
			root.Send(d, task.EvictAddress{Address: e.Address, Reason: "connection to " + e.Address + " lost"})
		}
	})
}

// SpawnExecutor starts an in-process executor actor (executor.Props) under
// the node's supervisor: restarted when it panics, escalated past
// Supervisor.MaxRestarts (docs/supervision.md).
func (n *Node) SpawnExecutor(ctx context.Context, id string, props *actor.Props) (*actor.PID, error) {
	res, err := n.system.Root.RequestFuture(n.supervisorPID(), supervisor.Spawn{ID: id, Props: props}, timeoutOf(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("node: spawn executor %s: %w", id, err)
	}
	r := res.(supervisor.SpawnResult)
	return r.PID, r.Err
}

// supervision adds the supervisor's view to a status.
func (n *Node) supervision(ctx context.Context, st *messages.Status) {
	res, err := n.system.Root.RequestFuture(n.supervisorPID(), supervisor.ViewRequest{}, timeoutOf(ctx)).Result()
	if err != nil {
		n.cfg.Logger.Warn("status: supervisor did not answer", "err", err)
		return
	}
	v := res.(supervisor.View)
	st.Executors = v.Merge(st.Executors)
	st.Alerts = v.Alerts
	st.Counters["alerts"] = v.Counters.Alerts
	st.Counters["restarts"] = v.Counters.Restarts
}
