package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// BenchmarkCommit measures durable intake: one iteration commits one batch of
// `batch` tasks (256-byte payloads), with up to `writers` Commits in flight at
// once; concurrent Commits share syncs. tasks/s is the headline figure;
// commits/sync is the mean group size.
func BenchmarkCommit(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("batch=%d/writers=%d", batch, writers), func(b *testing.B) {
				benchCommit(b, batch, writers)
			})
		}
	}
}

func benchCommit(b *testing.B, batch, writers int) {
	cfg := DefaultPebbleConfig(b.TempDir())
	p, err := OpenPebble(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	benchCommitOn(b, p, func() (uint64, uint64) { s := p.Stats(); return s.Commits, s.Syncs }, batch, writers)
}

// benchCommitOn runs the commit benchmark on p; stats returns its commits
// and syncs so far.
func benchCommitOn(b *testing.B, p Store, stats func() (commits, syncs uint64), batch, writers int) {
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var nextID atomic.Uint64
	mkBatch := func() *Batch {
		first := nextID.Add(uint64(batch)) - uint64(batch) + 1
		tasks := make([]task.Record, batch)
		for i := range tasks {
			id := first + uint64(i)
			tasks[i] = task.Record{
				ID:          id,
				Type:        "bench",
				Payload:     payload,
				Priority:    messages.DefaultPriority,
				Class:       messages.ClassNormal,
				Digest:      task.Digest{byte(id), byte(id >> 8), byte(id >> 16)},
				MaxAttempts: 3,
				SubmittedAt: int64(id),
			}
		}
		return &Batch{Tasks: tasks}
	}

	ctx := b.Context()
	var failed atomic.Pointer[error]
	// writers commits stay in flight: each iteration waits for a free slot
	// and starts one Commit, so the committer sees a steady queue rather
	// than lockstep rounds.
	slots := make(chan struct{}, writers)
	var wg sync.WaitGroup
	commits0, syncs0 := stats()
	cpu0 := processCPU()
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		slots <- struct{}{}
		bt := mkBatch()
		wg.Go(func() {
			defer func() { <-slots }()
			if err := p.Commit(ctx, bt); err != nil {
				failed.Store(&err)
			}
		})
	}
	wg.Wait() // the last commits are counted, so time them too
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	if errp := failed.Load(); errp != nil {
		b.Fatalf("Commit: %v", *errp)
	}
	commits1, syncs1 := stats()
	b.ReportMetric(float64(nextID.Load())/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(nextID.Load()), "cpu-ns/task")
	if syncs := syncs1 - syncs0; syncs > 0 {
		b.ReportMetric(float64(commits1-commits0)/float64(syncs), "commits/sync")
	}
}

// processCPU returns the user and system CPU time the process has used so
// far: the committer, Pebble's background work and the GC included, which
// is what a CPU-bound node pays per task.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
