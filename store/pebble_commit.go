package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// Group commit.
//
// Every write (Commit, CommitAsync, Sweep's deletions) becomes a commitReq on
// one FIFO queue. Callers encode their records into a private pebble.Batch
// before queueing, so msgpack encoding runs in parallel on the callers'
// goroutines. A single committer goroutine takes everything queued, up to
// MaxGroupBytes, applies the requests' batches in queue order to one group
// batch and commits it with one fsync; every request of the group gets that
// commit's error (or nil). Groups are written one after another, so requests
// become durable in exactly the order they were queued.
//
// Attempt updates are read-modify-writes of t/ records. Only the committer
// writes, so it reads the current record with db.Get; records written earlier
// in the same, not yet committed group are found in a small overlay.

const (
	reqQueued    int32 = iota // waiting in the queue
	reqTaken                  // owned by the committer
	reqWithdrawn              // given up by its caller (ctx done) before being taken
)

type commitReq struct {
	ctx   context.Context
	b     *Batch        // nil for a sweep
	sweep []uint64      // ids whose t/ and r/ records are deleted
	pb    *pebble.Batch // encoded Tasks, Results and sweep deletions
	size  int           // pb.Len() at queueing
	maxID uint64        // largest task id in b.Tasks (0 if none)
	state atomic.Int32
	done  chan error // receives exactly one value, from the committer
}

// finish delivers the request's outcome and releases its batch. Only the
// committer calls it, on taken requests.
func (r *commitReq) finish(err error) {
	_ = r.pb.Close()
	r.done <- err
}

// Commit writes b atomically and durably. Concurrent Commits share one fsync
// and are applied in the order they were queued. Within b, Tasks are applied
// first, then Results, then Attempts, so a batch may carry a task together
// with its result (a duplicate answered at intake). An attempt update of a
// task that has no record is skipped.
//
// If ctx is done before the committer took b, Commit returns ctx.Err() and
// nothing of b is written; once taken, Commit waits for the sync. b must not
// be modified until Commit returns.
//
// Two Pebble behaviours show through. Pebble publishes a batch to readers
// just before its fsync completes, so Task or Pending may see b's records
// shortly before Commit returns: only Commit's nil means durable. And Pebble
// treats a failed WAL write or fsync as fatal (Logger.Fatalf, which this store
// logs and turns into a panic) rather than returning an error.
func (p *Pebble) Commit(ctx context.Context, b *Batch) error {
	r, err := p.enqueueBatch(ctx, b)
	if err != nil || r == nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			_ = r.pb.Close()
			return ctx.Err()
		}
		return <-r.done // taken: the outcome is near
	}
}

// CommitAsync queues b like Commit but returns as soon as b is queued. The
// channel receives exactly one value: nil once b is durable, or the error.
// Queue order is call order, so a single goroutine that calls CommitAsync in
// id order gets its batches durable in id order while overlapping their
// syncs. If ctx is done before the committer takes b, ctx.Err() is delivered
// and nothing of b is written. b must not be modified until the value arrives.
func (p *Pebble) CommitAsync(ctx context.Context, b *Batch) <-chan error {
	r, err := p.enqueueBatch(ctx, b)
	if err != nil || r == nil {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	return r.done
}

// enqueueBatch encodes b and queues it. It returns a nil request (and nil
// error) for an empty batch.
func (p *Pebble) enqueueBatch(ctx context.Context, b *Batch) (*commitReq, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b == nil || b.Empty() {
		return nil, nil
	}
	r, err := p.encodeBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := p.enqueue(r); err != nil {
		_ = r.pb.Close()
		return nil, err
	}
	return r, nil
}

// encodeBatch writes b's Tasks and Results into a fresh pebble.Batch. Attempts
// are left to the committer (they need the current record).
func (p *Pebble) encodeBatch(ctx context.Context, b *Batch) (*commitReq, error) {
	pb := p.db.NewBatch()
	enc := newRecordEncoder()
	r := &commitReq{ctx: ctx, b: b, pb: pb, done: make(chan error, 1)}
	for i := range b.Tasks {
		t := &b.Tasks[i]
		v, err := enc.encode(t)
		if err != nil {
			_ = pb.Close()
			return nil, fmt.Errorf("store: encode task %d: %w", t.ID, err)
		}
		_ = pb.Set(taskKey(t.ID), v, nil)
		_ = pb.Set(pendingKey(t.Class, t.ID), nil, nil)
		r.maxID = max(r.maxID, t.ID)
	}
	for i := range b.Results {
		res := &b.Results[i]
		v, err := enc.encode(res)
		if err != nil {
			_ = pb.Close()
			return nil, fmt.Errorf("store: encode result %d: %w", res.ID, err)
		}
		_ = pb.Set(resultKey(res.ID), v, nil)
		_ = pb.Delete(pendingKey(res.Class, res.ID), nil)
	}
	r.size = pb.Len()
	return r, nil
}

// writeSweep deletes the t/ and r/ records of ids through the committer.
func (p *Pebble) writeSweep(ctx context.Context, ids []uint64) error {
	pb := p.db.NewBatch()
	for _, id := range ids {
		_ = pb.Delete(resultKey(id), nil)
		_ = pb.Delete(taskKey(id), nil)
	}
	r := &commitReq{ctx: ctx, sweep: ids, pb: pb, size: pb.Len(), done: make(chan error, 1)}
	if err := p.enqueue(r); err != nil {
		_ = pb.Close()
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			_ = r.pb.Close()
			return ctx.Err()
		}
		return <-r.done
	}
}

func (p *Pebble) enqueue(r *commitReq) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.queue = append(p.queue, r)
	p.mu.Unlock()
	p.signal()
	return nil
}

func (p *Pebble) commitLoop() {
	defer close(p.committerDone)
	var group []*commitReq
	for {
		var ok bool
		group, ok = p.take(group[:0])
		if !ok {
			return
		}
		if len(group) > 0 {
			p.commitGroup(group)
		}
		clear(group) // drop references for the GC
	}
}

// take blocks until requests are queued and moves the next group (in queue
// order, bounded by MaxGroupBytes) into group. It returns false once the
// store is closed and the queue is drained.
func (p *Pebble) take(group []*commitReq) ([]*commitReq, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) == 0 {
		if p.closed {
			return group, false
		}
		p.mu.Unlock()
		<-p.wake
		p.mu.Lock()
	}
	n, size := 0, 0
	for ; n < len(p.queue); n++ {
		r := p.queue[n]
		if r.state.Load() == reqWithdrawn {
			continue // its caller closed its batch already
		}
		if len(group) > 0 && size+r.size > p.cfg.MaxGroupBytes {
			break
		}
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // withdrawn just now
		}
		size += r.size
		group = append(group, r)
	}
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	return group, true
}

// commitGroup writes the taken requests with one synced batch and finishes
// each of them.
func (p *Pebble) commitGroup(group []*commitReq) {
	live := make([]*commitReq, 0, len(group))
	var ov overlay // built on the first attempt update of the group
	groupMax := p.maxID
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			continue
		}
		if r.b != nil && len(r.b.Attempts) > 0 {
			if ov == nil {
				ov = newOverlay(live)
			}
			ov.addTasks(r)
			if err := p.applyAttempts(r, ov); err != nil {
				ov = nil // may hold r's writes; rebuilt from live if needed again
				r.finish(err)
				continue
			}
		} else if ov != nil {
			ov.addTasks(r)
			ov.addSweep(r)
		}
		groupMax = max(groupMax, r.maxID)
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if hook := p.testHookBeforeGroup; hook != nil {
		hook()
	}

	gb := live[0].pb // a group of one commits its own batch: no copy
	if len(live) > 1 {
		size := 0
		for _, r := range live {
			size += r.pb.Len()
		}
		gb = p.db.NewBatchWithSize(size + 64)
		defer gb.Close()
		for _, r := range live {
			if err := gb.Apply(r.pb, nil); err != nil {
				err = fmt.Errorf("store: group commit: apply batch: %w", err)
				for _, r := range live {
					r.finish(err)
				}
				return
			}
		}
	}
	if groupMax > p.maxID {
		_ = gb.Set(maxIDKey, be8(groupMax), nil)
	}
	bytes := gb.Len()
	err := gb.Commit(pebble.Sync)
	p.syncs.Add(1)
	p.commits.Add(uint64(len(live)))
	p.bytes.Add(uint64(bytes))
	for {
		m := p.maxGroup.Load()
		if uint64(len(live)) <= m || p.maxGroup.CompareAndSwap(m, uint64(len(live))) {
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("store: group commit of %d batches: %w", len(live), err)
		p.log.Error("group commit failed", "batches", len(live), "bytes", bytes, "err", err)
	} else {
		p.maxID = groupMax
	}
	for _, r := range live {
		r.finish(err)
	}
}

// applyAttempts rewrites the t/ record of each attempt update of r into r's
// own batch (after its tasks and results), skipping ids without a record.
func (p *Pebble) applyAttempts(r *commitReq, ov overlay) error {
	enc := newRecordEncoder()
	for _, u := range r.b.Attempts {
		rec, ok, err := p.currentTask(ov, u.ID)
		if err != nil {
			return err
		}
		if !ok {
			p.log.Debug("attempt update of unknown task skipped", "task_id", u.ID)
			continue
		}
		rec.Attempts = u.Attempts
		v, err := enc.encode(&rec)
		if err != nil {
			return fmt.Errorf("store: encode task %d: %w", u.ID, err)
		}
		_ = r.pb.Set(taskKey(u.ID), v, nil)
		ov[u.ID] = &rec
	}
	return nil
}

// currentTask returns the task record as the group has it so far.
func (p *Pebble) currentTask(ov overlay, id uint64) (TaskRecord, bool, error) {
	if rec, ok := ov[id]; ok {
		if rec == nil {
			return TaskRecord{}, false, nil // swept earlier in the group
		}
		return *rec, true, nil
	}
	k := taskKey(id)
	v, closer, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return TaskRecord{}, false, nil
	}
	if err != nil {
		return TaskRecord{}, false, fmt.Errorf("store: read %s: %w", keyString(k), err)
	}
	defer closer.Close()
	rec, err := decodeTask(k, v)
	return rec, err == nil, err
}

// overlay holds the t/ records written by the group so far (nil: deleted).
type overlay map[uint64]*TaskRecord

func newOverlay(live []*commitReq) overlay {
	ov := overlay{}
	for _, r := range live {
		ov.addTasks(r)
		ov.addSweep(r)
		if r.b == nil {
			continue
		}
		// Re-derive r's attempt writes on top of what the overlay holds now.
		// An id not in the overlay was updated from its database record; a
		// later lookup reads that record again and, Attempts being an
		// absolute count, ends with the same result.
		for _, u := range r.b.Attempts {
			if rec := ov[u.ID]; rec != nil {
				c := *rec
				c.Attempts = u.Attempts
				ov[u.ID] = &c
			}
		}
	}
	return ov
}

func (ov overlay) addTasks(r *commitReq) {
	if r.b == nil {
		return
	}
	for i := range r.b.Tasks {
		t := r.b.Tasks[i]
		ov[t.ID] = &t
	}
}

func (ov overlay) addSweep(r *commitReq) {
	for _, id := range r.sweep {
		ov[id] = nil
	}
}
