package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// The storage limit of W1: the same lifecycle on the Pebble store alone, no
// actors, clients or executors. Tasks are inserted in the batches W1's
// producers submit (opt.Batch tasks, opt.Producers Commits in flight, each
// fsync'd before the next of its producer), then marked done: one result per
// task, committed in batches of doneBatch (the node's mean result batch in
// the same run) with storageDoneInFlight of them in flight, like the dedupe
// actor's pipelined result flushes. drain inserts everything first;
// concurrent marks tasks done as soon as their insert is durable. Same store
// options, a fresh directory, after the node has stopped.
//
// Not included: digests (blake3 at intake is shoal's work, not the store's),
// and the pump's Pending scans that read standby tasks back.

// storageDoneInFlight bounds the result commits in flight. The node's dedupe
// actor flushes every 2 ms or 2,048 results without waiting for the previous
// flush; at W1's rates that is a few commits in flight.
const storageDoneInFlight = 4

// storageRun is the outcome of a storage-only lifecycle.
type storageRun struct {
	elapsed time.Duration
	cpu     time.Duration
	fsyncs  uint64
}

// runStorageLifecycle runs n tasks' lifecycle on a fresh Pebble store with
// opts in a directory under opt.Dir.
func runStorageLifecycle(ctx context.Context, opt Options, opts store.PebbleOptions, n, doneBatch int) (storageRun, error) {
	dir, err := os.MkdirTemp(opt.Dir, "shoal-bench-storage-")
	if err != nil {
		return storageRun{}, fmt.Errorf("create the store directory: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := store.OpenPebble(store.PebbleConfig{Dir: dir, Logger: opt.Logger, PebbleOptions: opts})
	if err != nil {
		return storageRun{}, err
	}
	defer st.Close()
	runtime.GC() // the node's garbage is not the store's cost

	pl := newPayloads(opt.PayloadBytes)
	nb := (n + opt.Batch - 1) / opt.Batch
	durable := make(chan [2]int, nb) // inserted [first, end) ranges, in any order
	var next atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	insert := func() {
		var wg sync.WaitGroup
		for range opt.Producers {
			wg.Go(func() {
				for ctx.Err() == nil {
					b := int(next.Add(1)) - 1
					if b >= nb {
						return
					}
					first, end := b*opt.Batch, min((b+1)*opt.Batch, n)
					recs := make([]task.Record, end-first)
					now := time.Now().UnixNano()
					for i := range recs {
						id := uint64(first + i + 1)
						recs[i] = task.Record{ID: id, Type: typeNoop, Payload: pl.make(id), Priority: messages.DefaultPriority,
							Class: messages.ClassNormal, Digest: storageDigest(id), MaxAttempts: 3, SubmittedAt: now}
					}
					if err := st.Commit(ctx, &store.Batch{Tasks: recs}); err != nil {
						cancel(fmt.Errorf("storage: insert batch %d: %w", b, err))
						return
					}
					durable <- [2]int{first, end}
				}
			})
		}
		wg.Wait()
		close(durable)
	}
	markDone := func() error {
		inflight := make(chan (<-chan error), storageDoneInFlight)
		var failed error
		wait := func() {
			if err := <-<-inflight; err != nil && failed == nil {
				failed = err
			}
		}
		results := make([]task.Result, 0, doneBatch)
		flush := func() {
			if len(results) == 0 {
				return
			}
			if len(inflight) == cap(inflight) {
				wait()
			}
			inflight <- st.CommitAsync(ctx, &store.Batch{Results: results})
			results = make([]task.Result, 0, doneBatch)
		}
		for r := range durable {
			now := time.Now().UnixNano()
			for i := r[0]; i < r[1]; i++ {
				id := uint64(i + 1)
				results = append(results, task.Result{ID: id, Class: messages.ClassNormal, Digest: storageDigest(id),
					State: messages.StateDone, FinishedAt: now})
				if len(results) == doneBatch {
					flush()
				}
			}
		}
		flush()
		for len(inflight) > 0 {
			wait()
		}
		return failed
	}

	s0 := st.Stats()
	cpu0 := processCPU()
	t0 := time.Now()
	var doneErr error
	switch opt.Mode {
	case "drain":
		insert()
		doneErr = markDone()
	default:
		done := make(chan error, 1)
		go func() { done <- markDone() }()
		insert()
		doneErr = <-done
	}
	run := storageRun{elapsed: time.Since(t0), cpu: processCPU() - cpu0, fsyncs: st.Stats().Syncs - s0.Syncs}
	if err := errors.Join(context.Cause(ctx), doneErr); err != nil {
		return storageRun{}, err
	}
	return run, nil
}

// storageDigest is a cheap unique digest: the store only carries it.
func storageDigest(id uint64) task.Digest {
	var d task.Digest
	binary.LittleEndian.PutUint64(d[:], id)
	return d
}

// storageLimit runs W1's storage-only lifecycle after the node has stopped
// and records it next to shoal's figures: storage_limit_tasks_per_s,
// storage_cpu_us_per_task and fraction_of_storage (shoal's end-to-end rate
// over the storage limit). resultCommits is the node's number of result
// commits (0: unknown), which sets the done batch size.
func storageLimit(ctx context.Context, opt Options, res *Result, resultCommits uint64) error {
	n := opt.Tasks
	doneBatch := opt.Batch
	if resultCommits > 0 {
		doneBatch = max(1, min(n, int((uint64(n)+resultCommits/2)/resultCommits)))
	}
	// Labelled (the store's goroutines inherit it) so that a CPU profile of
	// the run tells the two apart: go tool pprof -tagignore w1=storage.
	var run storageRun
	var err error
	pprof.Do(ctx, pprof.Labels("w1", "storage"), func(ctx context.Context) {
		run, err = runStorageLifecycle(ctx, opt, opt.pebble(), n, doneBatch)
	})
	if err != nil {
		return err
	}
	res.Params["storage_done_batch"] = doneBatch
	res.Metrics["storage_limit_tasks_per_s"] = rate(int64(n), run.elapsed)
	res.Metrics["storage_s"] = secs(run.elapsed)
	res.Metrics["storage_cpu_us_per_task"] = round(float64(run.cpu)/float64(time.Microsecond)/float64(n), 2)
	res.Metrics["storage_fsyncs"] = float64(run.fsyncs)
	if lim := res.Metrics["storage_limit_tasks_per_s"]; lim > 0 {
		res.Metrics["fraction_of_storage"] = round(res.Metrics["tasks_per_s"]/lim, 3)
	}
	return nil
}
