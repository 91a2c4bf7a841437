package node

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/cluster/steal"
	"github.com/shoalrt/shoal/messages"
)

// A cluster member's wiring (Config.Cluster set). Its intake, result hub and
// dedupe actor answer under the owner names (messages.ActorOwner*), and
// routers take the well-known client names: a client may call any node, the
// router splits a Submit by partition owner and sends Wait and Cancel to the
// node each task id names. With the cluster off nothing here runs and the
// node is exactly the single node it was.

// firstID continues the id sequence under this node's tag (route.FirstID).
func (n *Node) firstID(maxID uint64) (uint64, error) {
	if n.cfg.Cluster == nil {
		return maxID, nil
	}
	return route.FirstID(n.cfg.Cluster.View().SelfTag, maxID)
}

// ownNames moves the node's intake, hub and dedupe to the owner names.
func (n *Node) ownNames() {
	if n.cfg.Cluster == nil {
		return
	}
	addr := n.system.Address()
	n.pids.Intake = actor.NewPID(addr, messages.ActorOwnerIntake)
	n.pids.Results = actor.NewPID(addr, messages.ActorOwnerResults)
	n.pids.Dedupe = actor.NewPID(addr, messages.ActorOwnerDedupe)
}

// spawnRouters starts the routers under the client names.
func (n *Node) spawnRouters(spawn func(*actor.Props, string) error) error {
	if n.cfg.Cluster == nil {
		return nil
	}
	deps := route.RouterDeps{Directory: n.cfg.Cluster, Codec: n.codec,
		Intake: n.pids.Intake, Results: n.pids.Results, Dedupe: n.pids.Dedupe,
		Policy: n.cfg.Intake.Policy, Logger: n.cfg.Logger}
	if s := n.shared(); s != nil {
		deps.Moved = s.MovedTo
	}
	props := route.RouterProps(deps)
	addr := n.system.Address()
	for i, name := range []string{messages.ActorIntake, messages.ActorResults, messages.ActorDedupe} {
		if err := spawn(props, name); err != nil {
			return err
		}
		n.routerPIDs[i] = actor.NewPID(addr, name)
	}
	n.cfg.Cluster.Watch(n.onOwnerChange) // after routerPIDs: it tells the routers
	return nil
}

// Directory is the node's routing directory (nil on a single node).
func (n *Node) Directory() *route.Directory { return n.cfg.Cluster }

// onOwnerChange is the one place a node reacts to a new partition table
// (route.Directory calls it after every membership change that moves
// partitions). With the Pebble store every node keeps its own tasks, so
// nothing is handed over: tasks already durable here stay and run here
// (their ids name this node, so Wait and Cancel still find them; leases
// fence their executors as always), and new submissions follow the new
// table at once because routers read the view per request. A shared store
// (PostgreSQL) extends this function: for moves whose From is no longer a
// member, the new owner adopts the dead node's pending tasks.
func (n *Node) onOwnerChange(prev, next *route.View, moves []partition.Move) {
	gained, lost := 0, 0
	for _, m := range moves {
		switch next.Self {
		case m.To:
			gained++
		case m.From:
			lost++
		}
	}
	n.cfg.Logger.Info("partition table changed", "members", len(next.Members), "moved", len(moves),
		"gained", gained, "lost", lost, "owned", next.Owned()[next.Self])
	for _, pid := range n.routerPIDs {
		if pid != nil {
			n.system.Root.Send(pid, route.MembersChanged{}) // fail forwards to departed members
		}
	}
}

// stealerPID is the work stealer, nil when the node does not steal.
func (n *Node) stealerPID() *actor.PID {
	if n.cfg.Cluster == nil || n.cfg.StealFrom == nil {
		return nil
	}
	return actor.NewPID(n.system.Address(), steal.Name)
}

// spawnStealer starts the work stealer (cluster/steal) when enabled.
func (n *Node) spawnStealer(spawn func(*actor.Props, string) error) error {
	if n.stealerPID() == nil {
		return nil
	}
	scfg := n.cfg.Steal
	scfg.Token = n.cfg.Token
	return spawn(steal.Props(scfg, steal.Deps{Self: n.cfg.Cluster.View().Self, Dispatch: n.pids.Dispatch,
		Codec: n.codec, Peers: n.cfg.StealFrom, ClassOf: n.cfg.Intake.ClassOf, Logger: n.cfg.Logger, Now: n.cfg.Now}), steal.Name)
}
