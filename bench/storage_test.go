package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalrt/shoal/store"
)

// BenchmarkStorageLifecycle is W1's storage limit on its own (storage.go):
// insert and mark done tasks=N on the Pebble store alone, per memtable size.
// cpu-us/task is the process's CPU (committer, flushes, compactions, GC) per
// task. Run with -benchtime=1x: one iteration is a whole lifecycle.
func BenchmarkStorageLifecycle(b *testing.B) {
	for _, tasks := range []int{200_000, 2_000_000} {
		for _, mode := range []string{"concurrent", "drain"} {
			for _, mb := range []uint64{4, 16, 64, 128} {
				b.Run(fmt.Sprintf("tasks=%d/mode=%s/memtable_mb=%d", tasks, mode, mb), func(b *testing.B) {
					opt := Options{Mode: mode, Tasks: tasks}.withDefaults("W1")
					po := store.DefaultPebbleOptions()
					po.MemTableSize = mb << 20
					var elapsed, cpu time.Duration
					for b.Loop() {
						run, err := runStorageLifecycle(b.Context(), opt, po, tasks, opt.Batch)
						if err != nil {
							b.Fatal(err)
						}
						elapsed += run.elapsed
						cpu += run.cpu
					}
					n := float64(b.N) * float64(tasks)
					b.ReportMetric(n/elapsed.Seconds(), "tasks/s")
					b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/task")
				})
			}
		}
	}
}
