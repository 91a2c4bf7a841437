package node

import (
	"context"
	"errors"
	"time"

	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Shared mode: cluster members on one PostgreSQL store (Config.Cluster and
// Config.Store both set).
//
// Every member accepts the tasks of the partitions it owns under ids of its
// own node tag (cluster/route), so ids never collide in the shared tables.
// A member's pump reads only its own id block (store.IDRange): tasks stay
// with the member that accepted them, as with Pebble, for as long as it
// lives. When a member is gone, the members that now own its partitions
// adopt its pending tasks: each re-submits the departed member's pending
// tasks of the partitions it owns to its own intake (new ids of its own
// tag, durable before anything else happens) and then removes the old rows,
// recording old → new in the store's moves table. Acknowledged work is
// thus never lost with a node.
//
// Handoff bound: a tag is adopted only once its member has been absent from
// the member list for Dispatch.LeaseTTL (and not during the first LeaseTTL
// after this node started, when members it has not yet seen may be alive).
// A member that comes back within that time (a restart, a gossip flap)
// keeps its tasks, so in the normal case no task runs under both the old and
// the new owner. Not covered: a member that returns exactly while a survivor
// adopts a page of its tasks (the page may run twice), and a survivor that
// crashes between re-submitting and removing (the old rows are adopted
// again: at least once, never lost). Attempt counts restart at 0 under the
// new id. Wait and Cancel on an old id follow the move: the routers look ids
// held by a departed tag up in the moves table (route.RouterDeps.Moved).

// sharedStore is the surface of a store that several members share.
type sharedStore interface {
	MaxIDInBlock(ctx context.Context, block uint16) (uint64, error)
	Adoptable(ctx context.Context, live []uint16, parts []int, after uint64, limit int) ([]task.Record, error)
	MoveOut(ctx context.Context, old, to []uint64, now time.Time) (int, error)
	MovedTo(ctx context.Context, ids []uint64) (map[uint64]uint64, error)
}

// shared returns the shared store surface in shared mode, else nil.
func (n *Node) shared() sharedStore {
	if n.cfg.Cluster == nil {
		return nil
	}
	s, _ := n.store.(sharedStore)
	return s
}

// ownMaxID is where this member's id sequence continues: in shared mode the
// largest id of its own block, not of the whole store.
func (n *Node) ownMaxID(ctx context.Context, maxID uint64) (uint64, error) {
	if s := n.shared(); s != nil {
		return s.MaxIDInBlock(ctx, n.cfg.Cluster.View().SelfTag)
	}
	return maxID, nil
}

// pumpStore is the store the pump refills from: in shared mode only this
// member's id block.
func (n *Node) pumpStore() store.Store {
	if n.shared() == nil {
		return n.store
	}
	b := route.Base(n.cfg.Cluster.View().SelfTag)
	return store.IDRange{Store: n.store, Lo: b, Hi: b | route.SeqMask}
}

// startAdopter runs the adoption loop in shared mode until Stop.
func (n *Node) startAdopter() {
	s := n.shared()
	if s == nil {
		return
	}
	if store.IDBlockBits != route.SeqBits {
		n.cfg.Logger.Error("store id blocks do not match route ids; adoption off", "store_bits", store.IDBlockBits, "route_bits", route.SeqBits)
		return
	}
	n.sweeper.Add(1)
	go n.adoptLoop(s)
}

func (n *Node) adoptLoop(s sharedStore) {
	defer n.sweeper.Done()
	handoff := n.cfg.Dispatch.LeaseTTL
	start := n.cfg.Now()
	seen := map[uint16]time.Time{} // node tag → when its member was last listed
	t := time.NewTicker(n.cfg.AdoptEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stopped:
			return
		case <-t.C:
		}
		now, v := n.cfg.Now(), n.cfg.Cluster.View()
		for _, m := range v.Members {
			seen[route.Tag(m.Name)] = now
		}
		if now.Sub(start) < handoff || len(v.Table.Owners) != store.PartitionCount {
			continue
		}
		var live []uint16
		for tag, at := range seen {
			if now.Sub(at) < handoff {
				live = append(live, tag)
			}
		}
		n.adopt(s, live, v.Table.Owned(v.Self))
	}
}

// adopt re-submits, page by page, the pending tasks of blocks not in live
// whose partitions are in parts, and removes the originals.
func (n *Node) adopt(s sharedStore, live []uint16, parts []int) {
	log := n.cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	page := min(500, n.cfg.Intake.MaxBatch)
	var after uint64
	for {
		select {
		case <-n.stopped:
			return
		default:
		}
		recs, err := s.Adoptable(ctx, live, parts, after, page)
		if err != nil || len(recs) == 0 {
			if err != nil && !errors.Is(err, store.ErrClosed) {
				log.Error("adoption scan failed", "err", err)
			}
			return
		}
		sub := &messages.Submit{Version: messages.ProtocolVersion, Tasks: make([]messages.TaskSpec, len(recs))}
		digests := make([]task.Digest, len(recs))
		old := make([]uint64, len(recs))
		for i, r := range recs {
			// Members may be configured differently: a cap this intake would
			// refuse would block the page for ever.
			maxAtt := min(r.MaxAttempts, n.cfg.Intake.MaxAttempts)
			sub.Tasks[i] = messages.TaskSpec{Type: r.Type, Payload: r.Payload, Priority: r.Priority, Requirements: r.Requirements, MaxAttempts: maxAtt,
				TimeoutMillis: r.TimeoutMillis}
			digests[i], old[i] = r.Digest, r.ID
		}
		res, err := n.system.Root.RequestFuture(n.pids.Intake, task.Routed{Submit: sub, Digests: digests}, 30*time.Second).Result()
		ack, _ := res.(*messages.SubmitAck)
		switch {
		case err != nil:
			log.Warn("adoption: intake did not answer; retried later", "err", err)
			return
		case ack == nil || ack.Err != nil || len(ack.IDs) != len(old):
			log.Warn("adoption refused by intake; retried later", "tasks", len(old), "ack", ack)
			return
		}
		moved, err := s.MoveOut(ctx, old, ack.IDs, n.cfg.Now())
		if err != nil {
			log.Error("adoption: removing adopted originals failed; they will be adopted again", "tasks", len(old), "err", err)
			return
		}
		log.Info("adopted pending tasks of departed members", "tasks", len(old), "moved", moved, "first_old", old[0], "first_new", ack.IDs[0])
		after = old[len(old)-1]
	}
}
