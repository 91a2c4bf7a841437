package store

import (
	"context"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// IDRange is a view of a Store whose Pending returns only tasks with ids in
// [Lo, Hi]; every other method is the Store's. A cluster node on a shared
// store gives it to its pump, so that it refills only its own tasks (its id
// block) and not every node's.
type IDRange struct {
	Store
	Lo, Hi uint64
}

// Pending returns up to limit pending tasks of class c with ids in
// (max(after, Lo-1), Hi], in ascending id order.
func (r IDRange) Pending(ctx context.Context, c messages.Class, after uint64, limit int) ([]task.Record, error) {
	if r.Lo > 0 && after < r.Lo-1 {
		after = r.Lo - 1
	}
	if after >= r.Hi {
		return nil, ctx.Err()
	}
	recs, err := r.Store.Pending(ctx, c, after, limit)
	for i := range recs {
		if recs[i].ID > r.Hi {
			return recs[:i], err
		}
	}
	return recs, err
}
