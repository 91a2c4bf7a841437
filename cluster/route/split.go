package route

import (
	"errors"
	"slices"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Part is the share of a request that one member handles: positions in the
// request's task or id list, in their original order.
type Part struct {
	Member string
	Index  []int
}

// SplitByOwner groups a batch's tasks by the owner of their digests. Parts
// come in member-name order, so a request splits the same way every time.
func SplitByOwner(v *View, digests []task.Digest) []Part {
	return group(len(digests), func(i int) string { return v.OwnerOf(digests[i]) })
}

// SplitByHolder groups task ids by the member holding them. Ids whose
// holder is not a live member come back in a part with Member "".
func SplitByHolder(v *View, ids []uint64) []Part {
	return group(len(ids), func(i int) string { return v.Holder(ids[i]) })
}

func group(n int, of func(int) string) []Part {
	var parts []Part
	at := map[string]int{}
	for i := range n {
		m := of(i)
		k, ok := at[m]
		if !ok {
			k = len(parts)
			at[m] = k
			parts = append(parts, Part{Member: m})
		}
		parts[k].Index = append(parts[k].Index, i)
	}
	slices.SortFunc(parts, func(a, b Part) int {
		switch {
		case a.Member < b.Member:
			return -1
		case a.Member > b.Member:
			return 1
		}
		return 0
	})
	return parts
}

// Pick returns the elements of xs at idx.
func Pick[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = xs[i]
	}
	return out
}

// SubmitGather assembles one client SubmitAck from the owners' acks. The
// client is acknowledged only when every owner acknowledged its part
// durable; the first refusal is what the client sees.
type SubmitGather struct {
	ids  []uint64
	left int
	err  *messages.Error
}

// NewSubmitGather waits for parts acks of an n-task batch.
func NewSubmitGather(n, parts int) *SubmitGather {
	return &SubmitGather{ids: make([]uint64, n), left: parts}
}

// Add records one part's answer; it reports true when every part answered.
func (g *SubmitGather) Add(p Part, ack *messages.SubmitAck, err error) bool {
	g.left--
	switch {
	case err != nil:
		g.fail(messages.Errorf(messages.AsError(err).Code, "owner %s of %d of these tasks: %v", p.Member, len(p.Index), err))
	case ack == nil:
		g.fail(messages.Errorf(messages.CodeInternal, "owner %s answered nothing", p.Member))
	case ack.Err != nil:
		e := *ack.Err
		if e.Index >= 0 && int(e.Index) < len(p.Index) {
			e.Index = int32(p.Index[e.Index]) // the client's numbering
		}
		e.Message = "owner " + p.Member + ": " + e.Message
		g.fail(&e)
	case len(ack.IDs) != len(p.Index):
		g.fail(messages.Errorf(messages.CodeInternal, "owner %s acknowledged %d of %d tasks", p.Member, len(ack.IDs), len(p.Index)))
	default:
		for k, i := range p.Index {
			g.ids[i] = ack.IDs[k]
		}
	}
	return g.left == 0
}

func (g *SubmitGather) fail(e *messages.Error) {
	if g.err == nil {
		g.err = e
	}
}

// Ack is the client's answer once every part answered.
func (g *SubmitGather) Ack() *messages.SubmitAck {
	if g.err != nil {
		return &messages.SubmitAck{Err: g.err}
	}
	return &messages.SubmitAck{IDs: g.ids}
}

// OutcomeGather assembles one Outcomes (for Wait or Cancel) from the
// holders' answers, in the order the client listed the ids. A holder that
// times out makes the whole answer a CodeTimeout with the states known (the
// SDK waits again); any other failure wins over a timeout.
type OutcomeGather struct {
	out  []messages.Outcome
	left int
	err  *messages.Error
}

// NewOutcomeGather waits for parts answers about ids.
func NewOutcomeGather(ids []uint64, parts int) *OutcomeGather {
	out := make([]messages.Outcome, len(ids))
	for i, id := range ids {
		out[i] = messages.Outcome{TaskID: id, State: messages.StateUnknown}
	}
	return &OutcomeGather{out: out, left: parts}
}

// Lost marks a part whose holder is not a live member; it counts as an
// answer.
func (g *OutcomeGather) Lost(p Part) bool {
	for _, i := range p.Index {
		g.out[i].Error = "the node holding this task is not a live cluster member"
	}
	return g.Add(p, nil, messages.Errorf(messages.CodeUnavailable, "%d tasks are held by a node that is not a live member (down or restarting); ask again later", len(p.Index)))
}

// Add records one part's answer; it reports true when every part answered.
func (g *OutcomeGather) Add(p Part, res *messages.Outcomes, err error) bool {
	g.left--
	if err == nil && res == nil {
		err = messages.Errorf(messages.CodeInternal, "node %s answered nothing", p.Member)
	}
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if res != nil && len(res.Outcomes) == len(p.Index) {
		for k, i := range p.Index {
			g.out[i] = res.Outcomes[k]
		}
	}
	if err != nil {
		e := messages.AsError(err)
		if g.err == nil || errors.Is(g.err, messages.ErrTimeout) && !errors.Is(e, messages.ErrTimeout) {
			g.err = e
		}
	}
	return g.left == 0
}

// Outcomes is the client's answer once every part answered.
func (g *OutcomeGather) Outcomes() *messages.Outcomes {
	return &messages.Outcomes{Outcomes: g.out, Err: g.err}
}
