package sdk

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Owner-aware submission (DialConfig.RouteToOwners; docs/cluster.md,
// "Smart clients"). The client digests each task as the node does
// (task.Checker.Digest with the node's digest fields from Status), finds
// the owner with the routers' own partition table (route.View over the
// members in Status) and sends each owner its part at the owner's public
// router. The owner's router then finds the part wholly local and hands it
// to its intake in one hop. A wrong guess (a stale view, other digest
// fields) is still correct: that router forwards as any router does. No new
// trust: every part goes to a public router, which validates and digests
// again.

// ViewEvery is how often a routing client refreshes its view of the cluster
// from Status (also at once after a failed part or an ack from an
// unexpected node).
const ViewEvery = time.Second

// ownerView is one routing snapshot: the partition table over the members
// the dialled node reported, and the digest configuration.
type ownerView struct {
	view     *route.View
	machines sync.Pool // *task.Checker
}

// owners is a Client's routing state.
type owners struct {
	cur        atomic.Pointer[ownerView] // nil: not known yet, route nothing
	at         atomic.Int64              // unix ns of the last refresh
	refreshing atomic.Bool
}

// newOwnerView builds the snapshot of a node's Status; nil when the node is
// not a cluster member (nothing to route).
func newOwnerView(node string, st *messages.Status) *ownerView {
	if len(st.Members) < 2 {
		return nil
	}
	var ms []route.Member
	for _, m := range st.Members {
		if m.Remote != "" {
			ms = append(ms, route.Member{Name: m.Name, Remote: m.Remote})
		}
	}
	p := task.DefaultPolicy()
	p.DigestFields = st.DigestFields
	ov := &ownerView{view: route.NewView(st.Node, node, partition.DefaultCount, ms)}
	ov.machines.New = func() any { return task.NewChecker(p) }
	return ov
}

// view is the current snapshot (nil: route nothing). It starts a
// background refresh when the snapshot is older than ViewEvery; the first
// call, and a call after the client was idle (5 × ViewEvery), waits for one.
func (c *Client) view(ctx context.Context) *ownerView {
	o := c.owners
	if at := o.at.Load(); at == 0 || time.Since(time.Unix(0, at)) > 5*ViewEvery {
		c.refresh(ctx)
	} else if time.Since(time.Unix(0, at)) > ViewEvery {
		c.refreshSoon()
	}
	return o.cur.Load()
}

// refreshSoon refreshes the view in the background (at most one at a time).
func (c *Client) refreshSoon() {
	if !c.owners.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.owners.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.refresh(ctx)
	}()
}

// refresh asks the dialled node for its members. A failed Status keeps the
// old view (the parts then go where they went; routers forward).
func (c *Client) refresh(ctx context.Context) {
	o := c.owners
	o.at.Store(time.Now().UnixNano())
	res, err := c.askAt(ctx, c.conn.Node, messages.ActorStatus, &messages.StatusRequest{})
	if err != nil {
		return
	}
	if st, ok := res.(*messages.Status); ok {
		o.cur.Store(newOwnerView(c.conn.Node, st))
	}
}

// split digests tasks and groups them by owner. It returns nil (send the
// batch unrouted, to the dialled node) when there is no view or the batch
// does not pass the default validation: the dialled node's router then
// answers with the authoritative result for the whole batch.
func (ov *ownerView) split(s *messages.Submit) []route.Part {
	m := ov.machines.Get().(*task.Checker)
	defer ov.machines.Put(m)
	if m.Validate(s) != nil {
		return nil
	}
	digests := make([]task.Digest, len(s.Tasks))
	for i := range s.Tasks {
		digests[i] = m.Digest(s.Tasks[i].Type, s.Tasks[i].Payload)
	}
	return route.SplitByOwner(ov.view, digests)
}

// submitRouted sends each owner its part of s and gathers the acks as a
// router does (route.SubmitGather). It returns nil, false when it did not
// route (the caller sends s as usual).
func (c *Client) submitRouted(ctx context.Context, s *messages.Submit) (*messages.SubmitAck, bool) {
	ov := c.view(ctx)
	if ov == nil {
		return nil, false
	}
	parts := ov.split(s)
	if parts == nil {
		return nil, false
	}
	type sent struct {
		p      route.Part
		sub    *messages.Submit
		f      *actor.Future
		err    error
		remote string
	}
	out := make([]sent, len(parts))
	for i, p := range parts {
		sub := s
		if len(parts) > 1 {
			sub = &messages.Submit{Version: s.Version, Tasks: route.Pick(s.Tasks, p.Index)}
		}
		out[i] = sent{p: p, sub: sub, remote: ov.view.Remote(p.Member)}
		out[i].f, out[i].err = c.requestAt(ctx, out[i].remote, messages.ActorIntake, sub)
	}
	g := route.NewSubmitGather(len(s.Tasks), len(parts))
	stale := false
	for i := range out {
		var ack *messages.SubmitAck
		err := out[i].err
		if err == nil {
			var res any
			res, err = c.resultUnless(ctx, out[i].f, messages.ActorIntake, c.left(out[i].p.Member, out[i].remote))
			if err != nil && ctx.Err() == nil && out[i].remote != c.conn.Node {
				// The member did not answer (gone since the view): the
				// dialled node's router routes the part with its own view.
				// Like any router's forward, the part may be durable at
				// the member that did not answer (at-least-once).
				res, err = c.askAt(ctx, c.conn.Node, messages.ActorIntake, out[i].sub)
			}
			if err == nil {
				ack, _ = res.(*messages.SubmitAck)
			}
		}
		if err != nil || ack == nil || ack.Err != nil {
			stale = true
		} else if len(ack.IDs) > 0 && route.TagOf(ack.IDs[0]) != route.Tag(out[i].p.Member) {
			stale = true // another node accepted them: the owner moved
		}
		g.Add(out[i].p, ack, err)
	}
	if stale {
		c.refreshSoon()
	}
	return g.Ack(), true
}

// left reports, for a request waiting on member at address remote, whether
// the view (refreshed in the background while it waits) no longer has it:
// the request then goes to the dialled node's router instead of waiting out
// its timeout. Requests to the dialled node itself wait as they are.
func (c *Client) left(member, remote string) func() bool {
	if member == "" || remote == c.conn.Node {
		return nil
	}
	return func() bool {
		c.refreshSoon()
		ov := c.owners.cur.Load() // nil: the dialled node saw itself alone
		return ov == nil || ov.view.Remote(member) == ""
	}
}

// outcomesRouted sends each holder (by the node tag in each id) its ids at
// its public router and merges the answers (route.OutcomeGather). Ids of a
// holder this client does not know go to the dialled node. It returns
// false when it did not route.
func (c *Client) outcomesRouted(ctx context.Context, name string, ids []uint64, mk func([]uint64) any) (*messages.Outcomes, bool) {
	ov := c.view(ctx)
	if ov == nil {
		return nil, false
	}
	parts := route.SplitByHolder(ov.view, ids)
	if len(parts) == 0 {
		return nil, false
	}
	fs := make([]*actor.Future, len(parts))
	errs := make([]error, len(parts))
	at := make([]string, len(parts))
	for i, p := range parts {
		at[i] = c.conn.Node
		if p.Member != "" {
			at[i] = ov.view.Remote(p.Member)
		}
		fs[i], errs[i] = c.requestAt(ctx, at[i], name, mk(route.Pick(ids, p.Index)))
	}
	g := route.NewOutcomeGather(ids, len(parts))
	for i, p := range parts {
		var out *messages.Outcomes
		err := errs[i]
		if err == nil {
			var res any
			res, err = c.resultUnless(ctx, fs[i], name, c.left(p.Member, at[i]))
			if err != nil && ctx.Err() == nil && at[i] != c.conn.Node {
				c.refreshSoon()
				res, err = c.askAt(ctx, c.conn.Node, name, mk(route.Pick(ids, p.Index)))
			}
			if err == nil {
				out, _ = res.(*messages.Outcomes)
			}
		}
		g.Add(p, out, err)
	}
	return g.Outcomes(), true
}
