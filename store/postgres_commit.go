package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/vmihailenco/msgpack/v5"
)

// Group commit on PostgreSQL.
//
// As in the Pebble store, every Commit and CommitAsync becomes a request on
// one FIFO queue; callers turn their records into column arrays before
// queueing, on their own goroutines. A single committer takes everything
// queued (up to MaxGroupBytes) and writes it in ONE transaction: each
// request's tasks, results, pending-flag updates and attempt updates become
// up to four array statements (multi-row upserts through unnest), all sent in
// one pipelined round trip that the server runs as one implicit transaction
// and commits with the group's single WAL flush. Requests are applied in queue order and each request in the order
// Tasks, Results, Attempts, exactly as in the Pebble store.
//
// A group the server rejects as a whole (an error reported by PostgreSQL,
// such as a constraint violation) is retried one request per transaction, so
// only the failing request fails. A lost connection or a timeout fails the
// whole group. Every statement is an idempotent upsert with absolute values,
// so a group whose COMMIT outcome is unknown may be written again safely.

// pgReq is one queued write.
type pgReq struct {
	ctx   context.Context
	w     pgWrite
	size  int
	state atomic.Int32 // reqQueued, reqTaken, reqWithdrawn (pebble_commit.go)
	done  chan error
}

func (r *pgReq) finish(err error)        { r.done <- err }
func (r *pgReq) reqState() *atomic.Int32 { return &r.state }
func (r *pgReq) reqSize() int            { return r.size }

// pgWrite holds one Batch as column arrays.
type pgWrite struct {
	tasks      *pgTaskCols
	results    *pgResultCols
	finished   []int64 // ids whose pending flag is cleared
	attemptIDs []int64
	attempts   []int32
	maxID      uint64
	paused     []byte // msgpack task.Paused, nil: unchanged
	totals     Totals // the results' kinds, for Metered.Totals
}

type pgTaskCols struct {
	id, submitted               []int64
	typ                         []string
	payload, digest             [][]byte
	priority, maxAtt, attempted []int32
	class                       []int16
	req                         []*string
	size                        []float64
	pin                         []string
	timeout                     []int64
}

type pgResultCols struct {
	id, aliasOf, finished []int64
	class, state          []int16
	digest, output        [][]byte
	errText               []string
	attempts              []int32
}

// Commit writes b atomically and durably (the transaction's COMMIT returned).
// Concurrent Commits share one transaction and are applied in the order they
// were queued; within b, Tasks first, then Results, then Attempts. An attempt
// update of a task that has no record is skipped. If ctx is done before the
// committer took b, Commit returns ctx.Err() and nothing of b is written;
// once taken, Commit waits for the transaction. b must not be modified until
// Commit returns.
func (p *Postgres) Commit(ctx context.Context, b *Batch) error {
	r, err := p.enqueueBatch(ctx, b)
	if err != nil || r == nil {
		return err
	}
	return awaitCommit(ctx, &r.state, r.done, nil)
}

// CommitAsync queues b like Commit and returns at once. The channel receives
// exactly one value: nil once b is durable, or the error. Batches become
// durable in call order.
func (p *Postgres) CommitAsync(ctx context.Context, b *Batch) <-chan error {
	r, err := p.enqueueBatch(ctx, b)
	if err != nil || r == nil {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	return r.done
}

func (p *Postgres) enqueueBatch(ctx context.Context, b *Batch) (*pgReq, error) {
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
	r := &pgReq{ctx: ctx, done: make(chan error, 1)}
	var err error
	if r.size, err = r.w.encode(b); err != nil {
		return nil, err
	}
	if err := p.enqueue(r); err != nil {
		return nil, err
	}
	return r, nil
}

// pgID maps a task id to the bigint stored for it, preserving order: the
// uint64 with its top bit flipped, read as signed (id 0 is -2^63, 2^63 is
// 0). Cluster ids carry a node tag in their top 16 bits, so half of them are
// above 2^63-1, which a plain bigint cannot hold in order.
func pgID(id uint64) int64 { return int64(id ^ 1<<63) }

// fromPgID is pgID's inverse.
func fromPgID(v int64) uint64 { return uint64(v) ^ 1<<63 }

// lastOfEach returns the indexes of the last occurrence of each id, in
// order: a batch that names an id twice keeps the later record, as Pebble's
// batch does (and PostgreSQL's upsert refuses to touch one row twice).
func lastOfEach(n int, id func(int) uint64) []int {
	idx := make([]int, 0, n)
	if n < 2 {
		for i := range n {
			idx = append(idx, i)
		}
		return idx
	}
	last := make(map[uint64]int, n)
	for i := range n {
		last[id(i)] = i
	}
	for i := range n {
		if last[id(i)] == i {
			idx = append(idx, i)
		}
	}
	return idx
}

// encode turns b into column arrays and returns their approximate size.
func (w *pgWrite) encode(b *Batch) (int, error) {
	size := 0
	if len(b.Tasks) > 0 {
		idx := lastOfEach(len(b.Tasks), func(i int) uint64 { return b.Tasks[i].ID })
		c := &pgTaskCols{}
		for _, i := range idx {
			t := &b.Tasks[i]
			req, err := requirementsJSON(t.Requirements)
			if err != nil {
				return 0, fmt.Errorf("store: task %d: %w", t.ID, err)
			}
			c.id = append(c.id, pgID(t.ID))
			c.typ = append(c.typ, pgText(t.Type))
			c.payload = append(c.payload, t.Payload)
			c.priority = append(c.priority, t.Priority)
			c.class = append(c.class, int16(t.Class))
			c.digest = append(c.digest, t.Digest[:])
			c.req = append(c.req, req)
			c.maxAtt = append(c.maxAtt, t.MaxAttempts)
			c.attempted = append(c.attempted, t.Attempts)
			c.submitted = append(c.submitted, t.SubmittedAt)
			c.size = append(c.size, t.Size)
			c.pin = append(c.pin, pgText(t.Pin))
			c.timeout = append(c.timeout, max(t.TimeoutMillis, 0))
			w.maxID = max(w.maxID, t.ID)
			size += 64 + len(t.Type) + len(t.Payload)
			if req != nil {
				size += len(*req)
			}
		}
		w.tasks = c
	}
	if len(b.Results) > 0 {
		idx := lastOfEach(len(b.Results), func(i int) uint64 { return b.Results[i].ID })
		c := &pgResultCols{}
		for _, i := range idx {
			r := &b.Results[i]
			var out []byte
			if len(r.Output) > 0 {
				out = r.Output
			}
			c.id = append(c.id, pgID(r.ID))
			c.class = append(c.class, int16(r.Class))
			c.digest = append(c.digest, r.Digest[:])
			c.state = append(c.state, int16(r.State))
			c.output = append(c.output, out)
			c.errText = append(c.errText, pgText(r.Error))
			c.attempts = append(c.attempts, r.Attempts)
			c.aliasOf = append(c.aliasOf, pgID(r.AliasOf))
			c.finished = append(c.finished, r.FinishedAt)
			size += 64 + len(r.Output) + len(r.Error)
		}
		w.results = c
		w.finished = c.id
		w.totals = Totals{}.add(b.Results)
	}
	// Starts are attempt counts like Attempts here: a column update costs
	// the same either way (counts only rise, so the last one is the largest).
	ups := b.Attempts
	if len(b.Starts) > 0 {
		ups = append(b.Attempts[:len(b.Attempts):len(b.Attempts)], b.Starts...)
	}
	if len(ups) > 0 {
		for _, i := range lastOfEach(len(ups), func(i int) uint64 { return ups[i].ID }) {
			u := ups[i]
			w.attemptIDs = append(w.attemptIDs, pgID(u.ID))
			w.attempts = append(w.attempts, u.Attempts)
			size += 12
		}
	}
	if b.Paused != nil {
		v, err := msgpack.Marshal(b.Paused)
		if err != nil {
			return 0, fmt.Errorf("store: encode paused set: %w", err)
		}
		w.paused = v
		size += len(v)
	}
	return size, nil
}

// pgText returns s as PostgreSQL text can hold it: invalid UTF-8 and NUL
// bytes become U+FFFD.
func pgText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// requirementsJSON encodes a task's requirements as a JSON object, nil when
// there are none.
func requirementsJSON(m map[string]string) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	clean := make(map[string]string, len(m))
	for k, v := range m {
		clean[pgText(k)] = pgText(v)
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("encode requirements: %w", err)
	}
	s := string(b)
	return &s, nil
}

// queue adds w's statements to b.
func (w *pgWrite) queue(b *pgx.Batch, s *pgStatements) {
	if c := w.tasks; c != nil {
		b.Queue(s.insertTasks, c.id, c.typ, c.payload, c.priority, c.class, c.digest, c.req, c.maxAtt, c.attempted, c.submitted, c.size, c.pin, c.timeout)
	}
	if c := w.results; c != nil {
		b.Queue(s.insertResults, c.id, c.class, c.digest, c.state, c.output, c.errText, c.attempts, c.aliasOf, c.finished)
		b.Queue(s.finishTasks, w.finished)
	}
	if len(w.attemptIDs) > 0 {
		b.Queue(s.setAttempts, w.attemptIDs, w.attempts)
	}
	if w.paused != nil {
		b.Queue(s.setControl, controlPaused, w.paused)
	}
}

func (p *Postgres) commitLoop() {
	defer close(p.committerDone)
	var group []*pgReq
	for {
		var ok bool
		group, ok = p.take(group[:0], p.cfg.MaxGroupBytes)
		if !ok {
			return
		}
		if len(group) > 0 {
			p.commitGroup(group)
		}
		clear(group)
	}
}

// commitGroup writes the taken requests in one transaction and finishes
// each of them.
func (p *Postgres) commitGroup(group []*pgReq) {
	if hook := p.testHookBeforeGroup; hook != nil {
		hook()
	}
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	p.commits.Add(uint64(len(live)))
	err := p.writeTx(live)
	// Observed before any request is finished, so a caller whose Commit
	// returned sees its commit counted.
	p.commitLatency.Observe(time.Since(start))
	var pgErr *pgconn.PgError
	if err != nil && len(live) > 1 && errors.As(err, &pgErr) {
		// Find the culprit: one request per transaction.
		p.retries.Add(1)
		p.log.Warn("group commit rejected; retrying its requests one by one", "requests", len(live), "err", err)
		for _, r := range live {
			err := p.writeTx([]*pgReq{r})
			if err != nil {
				p.log.Error("commit refused", "err", err)
			} else {
				p.countTotals([]*pgReq{r})
			}
			r.finish(err)
		}
		return
	}
	if err != nil {
		p.log.Error("group commit failed", "requests", len(live), "err", err)
	} else {
		p.countTotals(live)
		for {
			m := p.maxGroup.Load()
			if uint64(len(live)) <= m || p.maxGroup.CompareAndSwap(m, uint64(len(live))) {
				break
			}
		}
	}
	for _, r := range live {
		r.finish(err)
	}
}

// blockMaxima returns the largest task id of reqs per id block (see
// IDBlockBits), sorted by block.
func blockMaxima(reqs []*pgReq) ([]int32, []int64) {
	var blocks []int32
	var maxes []int64
	for _, r := range reqs {
		if r.w.tasks == nil {
			continue
		}
		for _, v := range r.w.tasks.id {
			id := fromPgID(v)
			b := int32(id >> IDBlockBits)
			i, found := slices.BinarySearch(blocks, b)
			if !found {
				blocks, maxes = slices.Insert(blocks, i, b), slices.Insert(maxes, i, v)
			} else if v > maxes[i] {
				maxes[i] = v
			}
		}
	}
	return blocks, maxes
}

// writeTx writes reqs in one transaction, in one round trip.
func (p *Postgres) writeTx(reqs []*pgReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CommitTimeout)
	defer cancel()
	var b pgx.Batch
	var maxID uint64
	for _, r := range reqs {
		r.w.queue(&b, &p.sql)
		maxID = max(maxID, r.w.maxID)
	}
	if maxID > 0 {
		// In the same transaction as the task rows they cover.
		b.Queue(p.sql.raiseMaxID, pgID(maxID))
		blocks, maxes := blockMaxima(reqs)
		b.Queue(p.sql.raiseBlocks, blocks, maxes)
	}
	// One pipeline ending in one Sync: the server runs every statement in
	// one implicit transaction and commits it at the Sync, before the
	// batch's last result arrives (pgx Conn.SendBatch), so Close returning
	// nil means committed. One round trip, no BEGIN and COMMIT of their own.
	syncStart := time.Now()
	defer func() { p.syncLatency.Observe(time.Since(syncStart)) }()
	br := p.pool.SendBatch(ctx, &b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("store: commit of %d batches: %w", len(reqs), err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("store: commit of %d batches: %w", len(reqs), err)
	}
	p.syncs.Add(1)
	return nil
}
