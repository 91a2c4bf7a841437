// Package bridge is the node's side of the instruction table (seed 003,
// S3.2): handlers for host task types, run by an ordinary SDK executor
// under the same dispatcher as every other executor. For each task granted,
// the handler writes an instruction (task id, attempt, payload), waits for a
// host agent's result and returns it; the dispatcher does the rest exactly
// as for a native executor (leases, retries, attempt fencing, cancel).
//
//   - The executor's context ends (lease revoked, task cancelled, node
//     stopping): the instruction is cancelled (failed), so an agent running
//     it stops at its next renewal and its result is refused.
//   - An agent that took the instruction dies: its lease in the table
//     expires, Run's reaper fails the instruction, the handler returns the
//     error and the dispatcher retries the task: a new attempt, a new
//     instruction.
//   - The node stops (Leave): instructions are left in the table. The
//     task's lease was not durable, so at the next start it is granted
//     again with the same attempt, and the handler's Put finds the same
//     instruction: running on, or already answered.
//   - A late result (a second one, or for an old attempt) lands on an
//     instruction that is no longer taken by its writer and is refused by
//     the table; a stale attempt's result would be refused by the
//     dispatcher anyway.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/hosts/internal/group"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
)

// Config configures a bridge.
type Config struct {
	// Types are the host task types the bridge serves. Required.
	Types []string
	// Node names the node in its instructions (task ids are per node, or
	// per cluster): nodes sharing one table need distinct names. Required.
	Node string
	// Host, when set, targets every instruction at that host name; empty:
	// any host agent serving the type may take it.
	Host string
	// Poll is how often Run reads finished instructions and reaps expired
	// leases. On PostgreSQL a notification wakes it at once; the poll
	// catches the rest (and all writes of other processes on SQLite).
	// Default 200 ms.
	Poll time.Duration
	// Retention is how long finished instructions stay in the table (a node
	// restarted within it finds the answers of the attempts it had
	// granted). Purged every PurgeEvery. Default 24 h, every 10 min.
	Retention, PurgeEvery time.Duration
	// CancelTimeout bounds marking an instruction cancelled after its task's
	// context ended. Default 5 s.
	CancelTimeout time.Duration
	// Batch bounds the instructions written in one batch: the handlers of
	// tasks granted together queue while a batch is being written, and the
	// next batch takes them all (group commit). Default 1,000.
	Batch int
	// WriteTimeout bounds writing one batch of instructions. Default 30 s.
	WriteTimeout time.Duration
	// MinPoll is the least time between two reads of results: wake-ups
	// come as often as agents write, and each read looks up every waiting
	// instruction, so those within the gap of a read are served by the
	// next one. The gap is MinPoll or 10 µs per waiting instruction, the
	// larger (2,048 waiting: 20 ms), so reads cost a bounded share of a
	// CPU whatever the load. Default 2 ms.
	MinPoll time.Duration
}

// DefaultConfig returns the defaults for types.
func DefaultConfig(node string, types ...string) Config {
	return Config{Node: node, Types: types, Poll: 200 * time.Millisecond, Retention: 24 * time.Hour, PurgeEvery: 10 * time.Minute, CancelTimeout: 5 * time.Second,
		Batch: 1000, WriteTimeout: 30 * time.Second, MinPoll: 2 * time.Millisecond}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("bridge: Config.Node is empty: name the node")
	case len(c.Types) == 0:
		return errors.New("bridge: Config.Types is empty: name the host task types")
	case c.Poll <= 0:
		return fmt.Errorf("bridge: Config.Poll must be > 0 (default 200ms), got %v", c.Poll)
	case c.Retention <= 0 || c.PurgeEvery <= 0:
		return fmt.Errorf("bridge: Config.Retention (%v) and Config.PurgeEvery (%v) must be > 0 (default 24h, 10m)", c.Retention, c.PurgeEvery)
	case c.MinPoll < 0 || c.MinPoll > c.Poll:
		return fmt.Errorf("bridge: Config.MinPoll must be in [0, Poll (%v)] (default 2ms), got %v", c.Poll, c.MinPoll)
	case c.Batch < 0 || c.WriteTimeout < 0:
		return fmt.Errorf("bridge: Config.Batch (%d) and Config.WriteTimeout (%v) must be >= 0 (0: 1000, 30s)", c.Batch, c.WriteTimeout)
	case c.CancelTimeout <= 0:
		return fmt.Errorf("bridge: Config.CancelTimeout must be > 0 (default 5s), got %v", c.CancelTimeout)
	}
	for _, t := range c.Types {
		if t == "" {
			return errors.New("bridge: Config.Types has an empty type")
		}
	}
	return nil
}

// Bridge turns granted tasks into instructions and their results back.
type Bridge struct {
	tbl table.Table
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	waiting map[int64]chan table.Instruction // instruction id → its handler
	kick    chan struct{}                    // new waiters: poll soon
	leaving atomic.Bool                      // Leave was called: contexts end for shutdown, not cancel
	puts    *group.Group[putReq, table.Instruction]
	reaped  time.Time // last Reap (Run's goroutine only)
}

// putReq is one handler's instruction and the channel its result comes on:
// the batch registers the channel before the handler has its row back, so
// no result can land unheard between the write and the wait.
type putReq struct {
	in table.Instruction
	ch chan table.Instruction
}

// New returns a bridge over tbl. Run must run for handlers to hear results.
func New(tbl table.Table, cfg Config, log *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	b := &Bridge{tbl: tbl, cfg: cfg, log: log, waiting: map[int64]chan table.Instruction{}, kick: make(chan struct{}, 1)}
	b.puts = &group.Group[putReq, table.Instruction]{Max: cfg.Batch, Do: b.putBatch}
	return b, nil
}

// putBatch writes a batch of instructions and registers their waiters.
func (b *Bridge) putBatch(reqs []putReq) ([]table.Instruction, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	ins := make([]table.Instruction, len(reqs))
	for i, r := range reqs {
		ins[i] = r.in
	}
	got, err := b.tbl.PutBatch(ctx, ins)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	for i, in := range got {
		if !in.State.Finished() {
			b.waiting[in.ID] = reqs[i].ch
		}
	}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return got, nil
}

// Types are the task types to register the handler for.
func (b *Bridge) Types() []string { return b.cfg.Types }

// Handle is the executor handler (sdk.Handler) of every host type.
func (b *Bridge) Handle(ctx context.Context, t messages.Task) ([]byte, error) {
	ch := make(chan table.Instruction, 1)
	in, err := b.puts.Call(putReq{ch: ch, in: table.Instruction{Node: b.cfg.Node, TaskID: t.ID, Attempt: t.Attempt, Type: t.Type,
		Host: b.cfg.Host, Kind: table.KindTask, Payload: t.Payload}})
	if err != nil {
		return nil, fmt.Errorf("bridge: write the instruction of task %d attempt %d: %w", t.ID, t.Attempt, err)
	}
	if in.State.Finished() { // this attempt's instruction existed and has an answer
		return outcome(in)
	}
	defer func() {
		b.mu.Lock()
		delete(b.waiting, in.ID)
		b.mu.Unlock()
	}()
	select {
	case fin := <-ch:
		return outcome(fin)
	case <-ctx.Done():
		if b.leaving.Load() {
			// The node is stopping, not cancelling: the instruction stays,
			// an agent may finish it, and the task's next grant (the same
			// attempt after a restart) finds it by (task, attempt).
			return nil, ctx.Err()
		}
		cctx, cancel := context.WithTimeout(context.Background(), b.cfg.CancelTimeout)
		defer cancel()
		if _, err := b.tbl.Cancel(cctx, in.ID, "cancelled by the node: the task was cancelled or its lease revoked"); err != nil {
			b.log.Warn("cancel instruction", "instruction", in.ID, "task_id", t.ID, "attempt", t.Attempt, "err", err)
		}
		return nil, ctx.Err()
	}
}

// Leave marks the bridge as stopping with its node: the handler contexts
// that end from now on leave their instructions in the table instead of
// cancelling them. Call it before stopping the executor.
func (b *Bridge) Leave() { b.leaving.Store(true) }

// outcome is a finished instruction's answer to the dispatcher: a failure
// is an ordinary (retryable) error, as a native handler's would be.
func outcome(in table.Instruction) ([]byte, error) {
	if in.State == table.StateDone {
		return in.Result, nil
	}
	return nil, fmt.Errorf("host instruction %d (task %d attempt %d, taker %q): %s", in.ID, in.TaskID, in.Attempt, in.Taker, in.Error)
}

// Run reads results for the waiting handlers and reaps expired leases
// until ctx ends: every Poll, and at once on a notification or a new
// batch of waiters (reaping at most once per Poll).
func (b *Bridge) Run(ctx context.Context) error {
	wake, stop := b.tbl.Subscribe()
	defer stop()
	tick := time.NewTicker(b.cfg.Poll)
	defer tick.Stop()
	purge := time.NewTicker(b.cfg.PurgeEvery)
	defer purge.Stop()
	// SQLite: its clock is this machine's and its writers are serialized,
	// so results commit in finished_at order and a cursor over the
	// (node, finished_at) index reads only what finished since the last
	// read (minus 2 ms), whatever the number in flight. PostgreSQL's
	// writers commit concurrently, out of clock order: there the bridge
	// looks its waiting instructions up (the server does the work). Both
	// do the full lookup every Poll as well, which catches anything the
	// cursor missed (a clock stepped back).
	cursor := b.tbl.Backend() == "sqlite"
	since := time.Now().Add(-time.Second)
	var full, polled time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-purge.C:
			if n, err := b.tbl.Purge(ctx, b.cfg.Retention); err != nil && ctx.Err() == nil {
				b.log.Warn("purge finished instructions", "err", err)
			} else if n > 0 {
				b.log.Info("finished instructions purged", "instructions", n)
			}
			continue
		case <-tick.C:
		case <-wake:
		case <-b.kick:
		}
		b.mu.Lock()
		waiting := len(b.waiting)
		b.mu.Unlock()
		gap := b.cfg.MinPoll
		if !cursor {
			gap = min(max(gap, time.Duration(waiting)*pollCostPerWaiter), b.cfg.Poll)
		}
		if wait := gap - time.Since(polled); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		polled = time.Now()
		var err error
		if !cursor || time.Since(full) >= b.cfg.Poll {
			full = polled
			err = b.poll(ctx)
		} else if waiting > 0 {
			err = b.pollSince(ctx, &since)
		}
		if err != nil && ctx.Err() == nil {
			b.log.Warn("bridge poll", "err", err)
		}
	}
}

// cursorMargin is how far before the latest finish seen the cursor reads
// again: rows stamped in the same millisecond, or by a clock a little off.
const cursorMargin = 2 * time.Millisecond

// pollSince delivers what finished since *since and moves it on.
func (b *Bridge) pollSince(ctx context.Context, since *time.Time) error {
	fin, err := b.tbl.FinishedSince(ctx, b.cfg.Node, since.Add(-cursorMargin))
	if err != nil {
		return err
	}
	for _, in := range fin {
		if in.Finished.After(*since) {
			*since = in.Finished
		}
	}
	b.deliver(fin)
	return nil
}

// pollCostPerWaiter spaces the reads of results by the instructions they
// look up (Config.MinPoll).
const pollCostPerWaiter = 10 * time.Microsecond

// poll reaps expired leases and delivers the finished instructions among
// those waited for.
func (b *Bridge) poll(ctx context.Context) error {
	b.mu.Lock()
	ids := make([]int64, 0, len(b.waiting))
	for id := range b.waiting {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if time.Since(b.reaped) >= b.cfg.Poll { // a reap is a write: once per Poll
		b.reaped = time.Now()
		if n, err := b.tbl.Reap(ctx); err != nil {
			return err
		} else if n > 0 {
			b.log.Info("host leases expired", "instructions", n)
		}
	}
	fin, err := b.tbl.Finished(ctx, ids)
	if err != nil {
		return err
	}
	b.deliver(fin)
	return nil
}

// deliver hands finished instructions to their waiting handlers.
func (b *Bridge) deliver(fin []table.Instruction) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, in := range fin {
		if ch, ok := b.waiting[in.ID]; ok {
			select {
			case ch <- in:
			default: // delivered by an earlier poll
			}
		}
	}
}
