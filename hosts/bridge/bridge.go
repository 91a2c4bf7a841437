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
}

// DefaultConfig returns the defaults for types.
func DefaultConfig(node string, types ...string) Config {
	return Config{Node: node, Types: types, Poll: 200 * time.Millisecond, Retention: 24 * time.Hour, PurgeEvery: 10 * time.Minute, CancelTimeout: 5 * time.Second}
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
	kick    chan struct{}                    // a new waiter: poll soon
	leaving atomic.Bool                      // Leave was called: contexts end for shutdown, not cancel
}

// New returns a bridge over tbl. Run must run for handlers to hear results.
func New(tbl table.Table, cfg Config, log *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bridge{tbl: tbl, cfg: cfg, log: log, waiting: map[int64]chan table.Instruction{}, kick: make(chan struct{}, 1)}, nil
}

// Types are the task types to register the handler for.
func (b *Bridge) Types() []string { return b.cfg.Types }

// Handle is the executor handler (sdk.Handler) of every host type.
func (b *Bridge) Handle(ctx context.Context, t messages.Task) ([]byte, error) {
	in, err := b.tbl.Put(ctx, table.Instruction{Node: b.cfg.Node, TaskID: t.ID, Attempt: t.Attempt, Type: t.Type, Host: b.cfg.Host, Kind: table.KindTask, Payload: t.Payload})
	if err != nil {
		return nil, fmt.Errorf("bridge: write the instruction of task %d attempt %d: %w", t.ID, t.Attempt, err)
	}
	if in.State.Finished() { // this attempt's instruction existed and has an answer
		return outcome(in)
	}
	ch := make(chan table.Instruction, 1)
	b.mu.Lock()
	b.waiting[in.ID] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiting, in.ID)
		b.mu.Unlock()
	}()
	select {
	case b.kick <- struct{}{}:
	default:
	}
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
// waiter.
func (b *Bridge) Run(ctx context.Context) error {
	wake, stop := b.tbl.Subscribe()
	defer stop()
	tick := time.NewTicker(b.cfg.Poll)
	defer tick.Stop()
	purge := time.NewTicker(b.cfg.PurgeEvery)
	defer purge.Stop()
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
		if err := b.poll(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("bridge poll", "err", err)
		}
	}
}

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
	if n, err := b.tbl.Reap(ctx); err != nil {
		return err
	} else if n > 0 {
		b.log.Info("host leases expired", "instructions", n)
	}
	fin, err := b.tbl.Finished(ctx, ids)
	if err != nil {
		return err
	}
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
	return nil
}
