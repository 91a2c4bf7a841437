package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// fillPending commits n tasks (256-byte payloads) in batches of 1000: every
// tenth of class high, the rest normal, and a result for every fourth normal
// one, so a class's pending ids have gaps in t/ as they have in a node.
// With flush, the data is flushed out of the memtable into sstables.
func fillPending(b *testing.B, p *Pebble, n int, flush bool) (normal int) {
	b.Helper()
	payload := make([]byte, 256)
	for first := 1; first <= n; first += 1000 {
		var bt Batch
		for id := first; id < first+1000 && id <= n; id++ {
			c := messages.ClassNormal
			if id%10 == 0 {
				c = messages.ClassHigh
			}
			bt.Tasks = append(bt.Tasks, task.Record{ID: uint64(id), Type: "bench", Payload: payload,
				Priority: messages.DefaultPriority, Class: c, Digest: task.Digest{byte(id), byte(id >> 8)},
				MaxAttempts: 3, SubmittedAt: int64(id)})
			if c == messages.ClassNormal && id%4 == 0 {
				bt.Results = append(bt.Results, task.Result{ID: uint64(id), Class: c, State: messages.StateDone,
					Attempts: 1, FinishedAt: int64(id)})
			} else if c == messages.ClassNormal {
				normal++
			}
		}
		if err := p.Commit(context.Background(), &bt); err != nil {
			b.Fatal(err)
		}
	}
	if flush {
		if err := p.db.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	return normal
}

// BenchmarkPending reads the pending normal tasks page by page, as the pump
// refills its queues from standby; ns/op is per page of `limit` tasks.
func BenchmarkPending(b *testing.B) {
	const tasks = 100_000
	for _, flush := range []bool{false, true} {
		for _, limit := range []int{100, 1000} {
			b.Run(fmt.Sprintf("flushed=%v/limit=%d", flush, limit), func(b *testing.B) {
				p, err := OpenPebble(DefaultPebbleConfig(b.TempDir()))
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				fillPending(b, p, tasks, flush)
				ctx := context.Background()
				var after uint64
				read := 0
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					recs, err := p.Pending(ctx, messages.ClassNormal, after, limit)
					if err != nil {
						b.Fatal(err)
					}
					read += len(recs)
					if len(recs) < limit {
						after = 0
					} else {
						after = recs[len(recs)-1].ID
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(read), "ns/task")
			})
		}
	}
}

// BenchmarkPointReads measures Task and Result lookups of random ids, as
// the result hub makes them.
func BenchmarkPointReads(b *testing.B) {
	const tasks = 100_000
	for _, flush := range []bool{false, true} {
		b.Run(fmt.Sprintf("flushed=%v", flush), func(b *testing.B) {
			p, err := OpenPebble(DefaultPebbleConfig(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			fillPending(b, p, tasks, flush)
			ctx := context.Background()
			b.ReportAllocs()
			var x uint64 = 1
			for b.Loop() {
				x = x*6364136223846793005 + 1442695040888963407
				id := x>>40%(tasks*2) + 1 // half of them missing
				if _, _, err := p.Task(ctx, id); err != nil {
					b.Fatal(err)
				}
				if _, _, err := p.Result(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResults measures the start-up scan of every result.
func BenchmarkResults(b *testing.B) {
	p, err := OpenPebble(DefaultPebbleConfig(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	fillPending(b, p, 100_000, true)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := p.Results(context.Background(), time.Time{}, func(task.Result) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
