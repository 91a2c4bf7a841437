package route

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// RouterDeps are a router's collaborators.
type RouterDeps struct {
	// Directory gives the current view (owners, holders, addresses).
	Directory *Directory
	// Codec wraps requests to other nodes and decodes their answers.
	Codec *cluster.Codec
	// Intake, Results and Dedupe are this node's own actors.
	Intake, Results, Dedupe *actor.PID
	// Policy is the node's intake policy: the router validates and digests
	// exactly as the node's intake does.
	Policy task.Policy
	// Timeout bounds a forwarded Submit or Cancel (a Wait gets its own
	// timeout plus this). Default 30 s.
	Timeout time.Duration
	// Moved, when set (shared PostgreSQL mode), resolves ids whose holder
	// is gone to the ids a survivor adopted them under, so Wait and Cancel
	// of an adopted task's original id reach it. Ids never moved are absent
	// from its answer.
	Moved  func(ctx context.Context, ids []uint64) (map[uint64]uint64, error)
	Logger *slog.Logger
}

// RouterProps returns a router actor. A node spawns one under each
// well-known client name (messages.ActorIntake, ActorResults, ActorDedupe);
// each answers Submit, Wait and Cancel alike.
func RouterProps(d RouterDeps) *actor.Props {
	if d.Timeout <= 0 {
		d.Timeout = 30 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &router{d: d, check: task.NewChecker(d.Policy)}
	})
}

type router struct {
	d     RouterDeps
	check *task.Checker
	// waiting holds the forwards each member has not answered yet, so that
	// MembersChanged can fail those of a member that left at once rather
	// than at their timeout.
	waiting map[string]map[*forward]struct{}
	counts  RouterStats // stats.go
}

// forward is a request to another member whose answer is awaited.
type forward struct {
	done     func(any, error)
	finished bool // done was called: a late answer or timeout is ignored
}

// MembersChanged tells a router that the membership changed (the node sends
// it from its owner-change watcher). Forwards still waiting on a member
// that is no longer in the view fail at once with CodeUnavailable: a
// client whose submission had a part at a node that died hears of it when
// the failure detector declares the node dead (about 1 s with
// --gossip-fast, about 5 s by default), not after the router's 30 s
// timeout. As with a timeout, that part may be durable at the departed
// node (at-least-once); resubmitting is safe.
type MembersChanged struct{}

func (r *router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *messages.Submit:
		r.submit(ctx, msg)
	case *messages.Wait:
		r.outcomes(ctx, msg.IDs, r.d.Results, messages.ActorOwnerResults, func(ids []uint64) any {
			return &messages.Wait{IDs: ids, TimeoutMillis: msg.TimeoutMillis}
		}, time.Duration(msg.TimeoutMillis)*time.Millisecond+r.d.Timeout)
	case *messages.Cancel:
		r.outcomes(ctx, msg.IDs, r.d.Dedupe, messages.ActorOwnerDedupe, func(ids []uint64) any {
			return &messages.Cancel{IDs: ids}
		}, r.d.Timeout)
	case StatsRequest:
		ctx.Respond(r.stats())
	case MembersChanged:
		v := r.d.Directory.View()
		for member, fs := range r.waiting {
			if v.Remote(member) != "" {
				continue
			}
			delete(r.waiting, member)
			for fw := range fs {
				fw.finished = true
				r.counts.Failed++
				fw.done(nil, messages.Errorf(messages.CodeUnavailable, "node %s left the cluster before it answered; retry (resubmitting is safe)", member))
			}
		}
	}
}

// submit validates the whole batch, splits it by owner and forwards one
// batch per owner; the client hears once every owner acknowledged.
func (r *router) submit(ctx actor.Context, msg *messages.Submit) {
	v := r.d.Directory.View()
	if v.Solo() {
		ctx.Forward(r.d.Intake) // the single-node path: intake does everything
		return
	}
	sender := ctx.Sender()
	if err := r.check.Validate(msg); err != nil {
		r.reply(ctx, sender, &messages.SubmitAck{Err: err})
		return
	}
	digests := make([]task.Digest, len(msg.Tasks))
	for i := range msg.Tasks {
		digests[i] = r.check.Digest(msg.Tasks[i].Type, msg.Tasks[i].Payload)
	}
	parts := SplitByOwner(v, digests)
	if len(parts) == 1 && parts[0].Member == v.Self {
		ctx.RequestWithCustomSender(r.d.Intake, task.Routed{Submit: msg, Digests: digests}, sender)
		return
	}
	g := NewSubmitGather(len(msg.Tasks), len(parts))
	for _, p := range parts {
		sub := &messages.Submit{Version: msg.Version, Tasks: Pick(msg.Tasks, p.Index)}
		done := func(res any, err error) {
			ack, _ := res.(*messages.SubmitAck)
			if g.Add(p, ack, err) {
				r.reply(ctx, sender, g.Ack())
			}
		}
		if p.Member == v.Self {
			r.local(ctx, r.d.Intake, task.Routed{Submit: sub, Digests: Pick(digests, p.Index)}, r.d.Timeout, done)
		} else {
			r.remote(ctx, v, p.Member, messages.ActorOwnerIntake, sub, r.d.Timeout, done)
		}
	}
}

// outcomes sends each holder its ids (Wait, Cancel) and merges the answers.
// Ids held by a member that is gone are first looked up in the moves of
// shared mode (Moved): an adopted task answers under its original id.
func (r *router) outcomes(ctx actor.Context, ids []uint64, local *actor.PID, ownerName string, mk func([]uint64) any, timeout time.Duration) {
	v := r.d.Directory.View()
	parts := SplitByHolder(v, ids)
	if len(parts) <= 1 && (len(parts) == 0 || parts[0].Member == v.Self) {
		ctx.Forward(local) // all held here (or an empty request: local refuses it)
		return
	}
	sender := ctx.Sender()
	if r.d.Moved == nil || parts[0].Member != "" { // parts come in member order: "" first
		r.gather(ctx, sender, v, ids, ids, parts, local, ownerName, mk, timeout)
		return
	}
	r.followMoves(ctx, Pick(ids, parts[0].Index), func(moved map[uint64]uint64) {
		asked := slices.Clone(ids)
		for i, id := range asked {
			if to, ok := moved[id]; ok {
				asked[i] = to
			}
		}
		v := r.d.Directory.View()
		r.gather(ctx, sender, v, ids, asked, SplitByHolder(v, asked), local, ownerName, mk, timeout)
	})
}

// gather asks each part's holder about asked (ids, or the ids they moved
// to) and answers the client about ids, in its order.
func (r *router) gather(ctx actor.Context, sender *actor.PID, v *View, ids, asked []uint64, parts []Part, local *actor.PID, ownerName string, mk func([]uint64) any, timeout time.Duration) {
	g := NewOutcomeGather(asked, len(parts))
	finish := func() {
		out := g.Outcomes()
		for i := range out.Outcomes {
			if o := &out.Outcomes[i]; asked[i] != ids[i] {
				o.TaskID = ids[i]
				if o.AliasOf == 0 {
					o.AliasOf = asked[i] // the adopted id ran the work
				}
			}
		}
		r.reply(ctx, sender, out)
	}
	for _, p := range parts {
		done := func(res any, err error) {
			out, _ := res.(*messages.Outcomes)
			if g.Add(p, out, err) {
				finish()
			}
		}
		switch p.Member {
		case "":
			if g.Lost(p) {
				finish()
			}
		case v.Self:
			r.local(ctx, local, mk(Pick(asked, p.Index)), timeout, done)
		default:
			r.remote(ctx, v, p.Member, ownerName, mk(Pick(asked, p.Index)), timeout, done)
		}
	}
}

// movedIDs carries a Moved answer back into the router.
type movedIDs map[uint64]uint64

// followMoves looks ids up with Moved off the actor (a store query) and
// continues in the router with the answer; a failed lookup continues with
// none (the ids then answer as held by a member that is gone).
func (r *router) followMoves(ctx actor.Context, ids []uint64, then func(map[uint64]uint64)) {
	sys := ctx.ActorSystem()
	f := actor.NewFuture(sys, r.d.Timeout)
	pid := f.PID()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), r.d.Timeout)
		defer cancel()
		m, err := r.d.Moved(c, ids)
		if err != nil {
			r.d.Logger.Warn("looking up moved tasks failed", "ids", len(ids), "err", err)
		}
		sys.Root.Send(pid, movedIDs(m))
	}()
	ctx.ReenterAfter(f, func(res any, err error) {
		m, _ := res.(movedIDs)
		then(m)
	})
}

// local asks one of this node's actors; done runs in the router.
func (r *router) local(ctx actor.Context, pid *actor.PID, msg any, timeout time.Duration, done func(any, error)) {
	f := ctx.RequestFuture(pid, msg, timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			err = messages.Errorf(messages.CodeUnavailable, "this node did not answer within %v: %v", timeout, err)
		}
		done(res, err)
	})
}

// remote asks member's actor name over remote; done runs in the router.
func (r *router) remote(ctx actor.Context, v *View, member, name string, msg any, timeout time.Duration, done func(any, error)) {
	r.counts.Forwarded++
	addr := v.Remote(member)
	if addr == "" {
		r.counts.Failed++
		done(nil, messages.Errorf(messages.CodeUnavailable, "member %s has no remote address", member))
		return
	}
	f, err := r.d.Codec.RequestFuture(ctx, actor.NewPID(addr, name), msg, timeout)
	if err != nil {
		r.counts.Failed++
		done(nil, err)
		return
	}
	fw := &forward{done: done}
	if r.waiting == nil {
		r.waiting = map[string]map[*forward]struct{}{}
	}
	if r.waiting[member] == nil {
		r.waiting[member] = map[*forward]struct{}{}
	}
	r.waiting[member][fw] = struct{}{}
	ctx.ReenterAfter(f, func(res any, err error) {
		if fw.finished {
			return // failed when the member left
		}
		fw.finished = true
		delete(r.waiting[member], fw)
		if len(r.waiting[member]) == 0 {
			delete(r.waiting, member)
		}
		out, err := r.d.Codec.Reply(res, err)
		if err != nil {
			if _, typed := err.(*messages.Error); !typed {
				r.counts.Failed++
				err = messages.Errorf(messages.CodeUnavailable, "node %s did not answer within %v: %v", member, timeout, err)
			}
		}
		done(out, err)
	})
}

func (r *router) reply(ctx actor.Context, to *actor.PID, msg any) {
	if to == nil {
		return
	}
	r.d.Codec.Send(ctx, to, msg)
}
