// Package store is shoal's durable task store: the Store interface and its
// implementations (Pebble, embedded; PostgreSQL comes with the cluster).
//
// The store holds three kinds of record:
//   - a task.Record per accepted task, written at intake, rewritten only when
//     its attempt count changes;
//   - a pending-index entry per unfinished task, keyed by class and id, which
//     the pump reads in id order to refill the queues (standby) and which
//     recovery reads to requeue every acknowledged, unfinished task;
//   - a task.Result per finished task (done, dead, cancelled), which removes
//     the pending entry in the same atomic batch.
//
// Leases are deliberately not durable: after a restart every unfinished task
// is queued again, which is what a lost lease means anyway. Their starts
// are: Batch.Starts (and, on a Pebble node, StartLog) count an attempt
// from the moment it is granted, so a run the node's death interrupts counts.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// AttemptUpdate records the attempt count of a task that stays pending: a
// failed attempt to be retried (Batch.Attempts), or an attempt starting
// (Batch.Starts).
type AttemptUpdate struct {
	ID       uint64 `msgpack:"id"`
	Attempts int32  `msgpack:"attempts"`
}

// Batch is one atomic write. All of it is durable when Commit returns nil.
type Batch struct {
	Tasks    []task.Record   // new tasks: record + pending entry
	Results  []task.Result   // terminal results: result record, pending entry removed
	Attempts []AttemptUpdate // attempt counts of tasks that stay pending
	// Starts record attempts as they start (leases granted): from then on
	// the task's record reads at least that count, so a run the node's
	// death interrupts is counted. A blind write, unlike Attempts (which
	// rewrites the record): the dispatcher writes one for every grant.
	Starts []AttemptUpdate
	// Paused, when set, replaces the stored paused set (task types and
	// priority classes held back from dispatch); read with Store.Paused.
	Paused *task.Paused
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Tasks) == 0 && len(b.Results) == 0 && len(b.Attempts) == 0 && len(b.Starts) == 0 && b.Paused == nil
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("store: closed")

// Store is the durable task store. Implementations are safe for concurrent use.
type Store interface {
	// Commit writes b atomically and durably (fsync). Concurrent Commits are
	// group-committed: they share one sync.
	Commit(ctx context.Context, b *Batch) error
	// CommitAsync queues b like Commit and returns at once; the channel
	// receives nil once b is durable, or the error. Queue order is call order.
	CommitAsync(ctx context.Context, b *Batch) <-chan error
	// Pending returns up to limit unfinished tasks of class c with id > after,
	// in ascending id order.
	Pending(ctx context.Context, c messages.Class, after uint64, limit int) ([]task.Record, error)
	// Task returns a task record.
	Task(ctx context.Context, id uint64) (task.Record, bool, error)
	// Result returns a task's terminal result.
	Result(ctx context.Context, id uint64) (task.Result, bool, error)
	// Results calls fn for every result finished at or after since
	// (rebuilds the dedupe window at start-up), in ascending id order.
	Results(ctx context.Context, since time.Time, fn func(task.Result) error) error
	// MaxID returns the largest task id ever stored (0 if none).
	MaxID(ctx context.Context) (uint64, error)
	// Paused returns the paused set last committed (Batch.Paused), the
	// zero Paused if none ever was.
	Paused(ctx context.Context) (task.Paused, error)
	// Sweep deletes task and result records of tasks that finished before
	// cutoff, at most limit of them, and returns how many it deleted.
	Sweep(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// Close flushes and releases the store.
	Close() error
}
