package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/shoalrt/shoal/task"
)

// Group commit.
//
// Every write (Commit, CommitAsync, Sweep's deletions) becomes a commitReq on
// one FIFO queue. Callers encode their records into a private pebble.Batch,
// sized up front, before queueing, so encoding runs in parallel on the
// callers' goroutines. A single committer goroutine takes everything queued,
// up to MaxGroupBytes, commits the requests' batches to Pebble in queue order
// without a sync and the group's last one with a sync, which makes the whole
// group durable with one fsync (Pebble's WAL is written in commit order). Only
// then does any request of the group get its outcome. Groups are written one
// after another, so requests become durable in exactly the order they were
// queued.
//
// Attempt updates are read-modify-writes of t/ records. Only the committer
// writes, and it computes a request's updates just before committing it, so
// db.Get returns the current record, written by an earlier group or by an
// earlier request of the same group.

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

func (r *commitReq) reqState() *atomic.Int32 { return &r.state }
func (r *commitReq) reqSize() int            { return r.size }

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
// Two Pebble behaviours show through. Pebble publishes a batch to readers as
// soon as it is applied, before the group's fsync completes, so Task or
// Pending may see b's records shortly before Commit returns: only Commit's
// nil means durable. And Pebble
// treats a failed WAL write or fsync as fatal (Logger.Fatalf, which this store
// logs and turns into a panic) rather than returning an error.
func (p *Pebble) Commit(ctx context.Context, b *Batch) error {
	r, err := p.enqueueBatch(ctx, b)
	if err != nil || r == nil {
		return err
	}
	return awaitCommit(ctx, &r.state, r.done, func() { _ = r.pb.Close() })
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

// encodeBatch writes b's Tasks and Results into a fresh pebble.Batch sized
// for them up front. Attempts are left to the committer (they need the
// current record).
func (p *Pebble) encodeBatch(ctx context.Context, b *Batch) (*commitReq, error) {
	size, err := encodedSize(b)
	if err != nil {
		return nil, err
	}
	pb := p.db.NewBatchWithSize(size)
	r := &commitReq{ctx: ctx, b: b, pb: pb, done: make(chan error, 1)}
	// Records are grouped by key range (t/, p/ sets, r/, p/ deletions):
	// Pebble inserts a batch into the memtable skiplist in batch order and
	// reuses the previous insert's position, so runs of neighbouring keys
	// insert faster than t/ and p/ keys in turn. A p/ deletion of a task of
	// the same batch still follows its p/ set.
	for i := range b.Tasks {
		t := &b.Tasks[i]
		if err := setTask(pb, t.ID, t); err != nil {
			_ = pb.Close()
			return nil, err
		}
		r.maxID = max(r.maxID, t.ID)
	}
	for i := range b.Tasks {
		putPendingKey(pb.SetDeferred(pendingKeyLen, 0).Key, b.Tasks[i].Class, b.Tasks[i].ID)
	}
	for i := range b.Results {
		res := &b.Results[i]
		n := resultSize(res)
		op := pb.SetDeferred(resultKeyLen, n)
		putResultKey(op.Key, res.ID)
		if v := appendResult(op.Value[:0], res); len(v) != n {
			_ = pb.Close()
			return nil, fmt.Errorf("store: encode result %d: %d bytes, sized %d (record modified during Commit?)", res.ID, len(v), n)
		}
	}
	for i := range b.Results {
		putPendingKey(pb.DeleteDeferred(pendingKeyLen).Key, b.Results[i].Class, b.Results[i].ID)
	}
	// Starts are blind writes of s/<id>: no read of the record, so one per
	// grant costs little (Pending and Task take the larger count).
	for _, u := range b.Starts {
		op := pb.SetDeferred(startKeyLen, 4)
		putStartKey(op.Key, u.ID)
		binary.BigEndian.PutUint32(op.Value, uint32(max(u.Attempts, 0)))
	}
	if b.Paused != nil {
		v, err := msgpack.Marshal(b.Paused)
		if err != nil {
			_ = pb.Close()
			return nil, fmt.Errorf("store: encode paused set: %w", err)
		}
		_ = pb.Set(pausedKey, v, nil)
	}
	r.size = pb.Len()
	return r, nil
}

// Sizes of pebble.Batch records: Set and Delete reserve the kind byte and
// two varint lengths of up to 5 bytes each around key and value.
const (
	batchHeaderLen     = 12
	batchEntryOverhead = 1 + 2*5
	maxIDEntrySize     = batchEntryOverhead + 7 + 8 // m/maxid → be8
	// maxBatchBytes keeps a request well under Pebble's 4 GiB batch limit
	// (Pebble panics beyond it), leaving room for the committer's additions.
	maxBatchBytes = 3 << 30
)

// encodedSize returns the bytes b's records take in a pebble.Batch, plus
// room for the m/maxid update the committer may add.
func encodedSize(b *Batch) (int, error) {
	size := batchHeaderLen + maxIDEntrySize + totalsEntrySize
	for i := range b.Tasks {
		size += 2*batchEntryOverhead + taskKeyLen + taskSize(&b.Tasks[i]) + pendingKeyLen
	}
	for i := range b.Results {
		size += 2*batchEntryOverhead + resultKeyLen + resultSize(&b.Results[i]) + pendingKeyLen
	}
	size += len(b.Starts) * (batchEntryOverhead + startKeyLen + 4)
	if size > maxBatchBytes {
		return 0, fmt.Errorf("store: batch of %d tasks and %d results encodes to %d bytes, more than the %d a commit may hold",
			len(b.Tasks), len(b.Results), size, maxBatchBytes)
	}
	return size, nil
}

// setTask adds t as the t/ record of id to pb, encoded in place.
func setTask(pb *pebble.Batch, id uint64, t *task.Record) error {
	n := taskSize(t)
	op := pb.SetDeferred(taskKeyLen, n)
	putTaskKey(op.Key, id)
	if v := appendTask(op.Value[:0], t); len(v) != n {
		return fmt.Errorf("store: encode task %d: %d bytes, sized %d (record modified during Commit?)", t.ID, len(v), n)
	}
	return nil
}

// writeSweep deletes the t/, r/ and s/ records of ids through the committer.
func (p *Pebble) writeSweep(ctx context.Context, ids []uint64) error {
	pb := p.db.NewBatch()
	for _, id := range ids {
		_ = pb.Delete(resultKey(id), nil)
		_ = pb.Delete(taskKey(id), nil)
		_ = pb.Delete(startKey(id), nil)
	}
	r := &commitReq{ctx: ctx, sweep: ids, pb: pb, size: pb.Len(), done: make(chan error, 1)}
	if err := p.enqueue(r); err != nil {
		_ = pb.Close()
		return err
	}
	return awaitCommit(ctx, &r.state, r.done, func() { _ = r.pb.Close() })
}

func (p *Pebble) commitLoop() {
	defer close(p.committerDone)
	var group []*commitReq
	for {
		var ok bool
		group, ok = p.take(group[:0], p.cfg.MaxGroupBytes)
		if !ok {
			return
		}
		if len(group) > 0 {
			p.commitGroup(group)
		}
		clear(group) // drop references for the GC
	}
}

// commitGroup writes the taken requests in queue order and makes them
// durable with one fsync, then finishes each of them.
//
// Each request's batch is committed to Pebble on its own without a sync, and
// the last one with a sync: Pebble's WAL is written in commit order, and a
// synced WAL write makes every earlier record durable too. (Copying the
// batches into one group batch costs a copy of every byte and a large
// allocation per group.) A request whose batch Pebble refuses fails alone;
// the others are still made durable.
func (p *Pebble) commitGroup(group []*commitReq) {
	if hook := p.testHookBeforeGroup; hook != nil {
		hook()
	}
	start := time.Now()
	applied := group[:0:0]
	synced := false
	totals := p.totals
	bytes := 0
	var failed []*commitReq // refused by Pebble, with their errors below
	var failures []error
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			continue
		}
		// Attempt updates read the current record: every earlier request of
		// the group is committed already, so db.Get sees its writes.
		if r.b != nil && len(r.b.Attempts) > 0 {
			if err := p.applyAttempts(r); err != nil {
				r.finish(err)
				continue
			}
		}
		// m/maxid goes into the batch of the task records it covers, so no
		// crash can leave a task record above the stored maximum.
		if r.maxID > p.maxID {
			_ = r.pb.Set(maxIDKey, be8(r.maxID), nil)
		}
		next := totals
		if r.b != nil && len(r.b.Results) > 0 {
			next = totals.add(r.b.Results)
			_ = r.pb.Set(totalsKey, next.encode(), nil) // with the results it counts
		}
		last := i == len(group)-1
		opts := pebble.NoSync
		var syncStart time.Time
		if last {
			opts, syncStart = pebble.Sync, time.Now()
		}
		bytes += r.pb.Len()
		if err := r.pb.Commit(opts); err != nil {
			failed = append(failed, r)
			failures = append(failures, fmt.Errorf("store: commit: %w", err))
			continue
		}
		if last {
			p.syncLatency.Observe(time.Since(syncStart))
		}
		totals = next
		p.maxID = max(p.maxID, r.maxID)
		applied = append(applied, r)
		synced = last
	}
	n := len(applied) + len(failed)
	if n == 0 {
		return
	}
	var err error
	if !synced && len(applied) > 0 {
		syncStart := time.Now()
		err = p.db.LogData(nil, pebble.Sync)
		p.syncLatency.Observe(time.Since(syncStart))
	}
	p.commitLatency.Observe(time.Since(start))
	if totals != p.totals {
		p.totals = totals
		p.totalsPub.Store(&totals)
	}
	p.syncs.Add(1)
	p.commits.Add(uint64(n))
	p.bytes.Add(uint64(bytes))
	for {
		m := p.maxGroup.Load()
		if uint64(n) <= m || p.maxGroup.CompareAndSwap(m, uint64(n)) {
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("store: group commit of %d batches: sync: %w", len(applied), err)
		p.log.Error("group commit failed", "batches", len(applied), "bytes", bytes, "err", err)
	}
	for i, r := range failed {
		p.log.Error("commit refused", "err", failures[i])
		r.finish(failures[i])
	}
	for _, r := range applied {
		r.finish(err)
	}
}

// applyAttempts rewrites the t/ record of each attempt update of r into r's
// own batch (after its tasks and results), skipping ids without a record. A
// task of r itself is taken from r; any other from the database, which holds
// every earlier request, as applyAttempts runs when they are committed.
func (p *Pebble) applyAttempts(r *commitReq) error {
	var own map[uint64]*task.Record
	if len(r.b.Tasks) > 0 {
		own = make(map[uint64]*task.Record, len(r.b.Tasks))
		for i := range r.b.Tasks {
			own[r.b.Tasks[i].ID] = &r.b.Tasks[i]
		}
	}
	var dec recordDecoder
	for _, u := range r.b.Attempts {
		var rec task.Record
		if t, ok := own[u.ID]; ok {
			rec = *t
		} else if ok, err := p.readTask(&dec, u.ID, &rec); err != nil {
			return err
		} else if !ok {
			p.log.Debug("attempt update of unknown task skipped", "task_id", u.ID)
			continue
		}
		// Attempts is an absolute count: a second update of the same id
		// rewrites the record again, and the last one wins.
		rec.Attempts = u.Attempts
		if err := setTask(r.pb, u.ID, &rec); err != nil {
			return err
		}
	}
	return nil
}

// readTask reads the committed record of task id into rec.
func (p *Pebble) readTask(dec *recordDecoder, id uint64, rec *task.Record) (bool, error) {
	var k [taskKeyLen]byte
	putTaskKey(k[:], id)
	v, closer, err := p.db.Get(k[:])
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read %s: %w", keyString(k[:]), err)
	}
	defer closer.Close()
	if err := dec.task(k[:], v, rec); err != nil {
		return false, err
	}
	return true, nil
}
