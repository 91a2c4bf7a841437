package dispatch

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// BenchmarkDispatchCycle measures the hot path: enqueue a batch, executors
// pull it (results of the previous grant reported in the same pull).
func BenchmarkDispatchCycle(b *testing.B) {
	for _, reqs := range []bool{false, true} {
		b.Run(fmt.Sprintf("requirements=%v", reqs), func(b *testing.B) {
			m := New(DefaultConfig())
			now := time.Unix(0, 0)
			const execs, batch = 8, 64
			for i := range execs {
				m.Register(now, &messages.Register{Version: messages.ProtocolVersion, ExecutorID: fmt.Sprint("e", i), Slots: 8,
					Capabilities: map[string]string{"os": "linux", "cuda": "12.1"}})
			}
			held := map[string][]messages.Result{}
			ids := make([]string, execs)
			for i := range ids {
				ids[i] = fmt.Sprint("e", i)
			}
			var id uint64
			tasks := make([]task.Record, batch)
			n := 0
			for b.Loop() {
				now = now.Add(time.Millisecond)
				for i := range tasks {
					id++
					tasks[i] = task.Record{ID: id, Type: "t", Class: messages.ClassNormal, Priority: 50, MaxAttempts: 3}
					if reqs {
						tasks[i].Requirements = map[string]string{"os": "=linux", "cuda": ">= 12.0", messages.ReqSize: "=4"}
						tasks[i].Size = 4
					}
				}
				take := func(fx Effects) {
					for _, g := range fx.Grants {
						for _, t := range g.Grant.Tasks {
							held[g.Executor] = append(held[g.Executor], messages.Result{TaskID: t.ID, Attempt: t.Attempt, OK: true, RunNanos: 1_000_000})
							n++
						}
					}
				}
				take(m.Enqueue(now, tasks))
				for _, eid := range ids {
					res := held[eid]
					held[eid] = nil
					take(m.Pull(now, &messages.Pull{ExecutorID: eid, Load: messages.LoadReport{CPU: 0.3, InFlight: int32(len(res))}, Results: res}))
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
