package dedupe

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// TestDedupeSimulation drives the machine with random deliveries, results
// and cancellations from a fake dispatcher whose answers arrive late, and
// checks that
//   - every delivered task ends with exactly one durable record;
//   - a task gets a cancelled record only if a client cancelled it;
//   - a duplicate's record copies the result of the original it names;
//   - every delivery's queue place is accounted for: returned at once, or
//     held by an original in the dispatcher.
func TestDedupeSimulation(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		cfg := Config{Window: time.Duration(rng.IntN(3)) * time.Second, MaxFinished: 1 + rng.IntN(5)}
		m := New(cfg)
		now := t0

		var (
			nextID     uint64
			delivered  = map[uint64]task.Record{}
			records    = map[uint64]task.Result{}
			cancelReq  = map[uint64]bool{} // ids a client asked to cancel
			inDispatch = map[uint64]task.Record{}
			inFlight   []task.Result // task.Finished messages on their way to dedupe
			credits    int
			dispatched int
		)
		apply := func(fx Effects) {
			for _, c := range fx.Credit {
				credits += c
			}
			for _, d := range fx.Dispatch {
				if _, dup := inDispatch[d.ID]; dup {
					t.Fatalf("seed %d: %d dispatched twice", seed, d.ID)
				}
				inDispatch[d.ID] = d
				dispatched++
			}
			for _, id := range fx.Cancel {
				if r, ok := inDispatch[id]; ok {
					delete(inDispatch, id)
					inFlight = append(inFlight, task.Result{ID: id, Class: r.Class, Digest: r.Digest,
						State: messages.StateCancelled, FinishedAt: now.UnixNano()})
				}
			}
			for _, r := range fx.Persist {
				if prev, dup := records[r.ID]; dup {
					t.Fatalf("seed %d: task %d has two records: %v then %v", seed, r.ID, prev.State, r.State)
				}
				if r.State == messages.StateCancelled && !cancelReq[r.ID] {
					t.Fatalf("seed %d: task %d cancelled, but nobody cancelled it", seed, r.ID)
				}
				if _, ok := delivered[r.ID]; !ok {
					t.Fatalf("seed %d: record for undelivered task %d", seed, r.ID)
				}
				records[r.ID] = r
			}
		}
		for step := 0; step < 400 || len(inDispatch)+len(inFlight) > 0; step++ {
			if step > 10_000 {
				t.Fatalf("seed %d: no quiescence", seed)
			}
			now = now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
			arrivals := step < 400
			switch k := rng.IntN(6); {
			case k == 0 && arrivals:
				var batch []task.Record
				for range 1 + rng.IntN(3) {
					nextID++
					r := task.Record{ID: nextID, Class: messages.Class(rng.IntN(3)), Digest: task.Digest{byte(rng.IntN(4))}}
					delivered[r.ID] = r
					batch = append(batch, r)
				}
				apply(m.Tasks(now, batch))
			case k == 1 && len(inDispatch) > 0:
				// The dispatcher finishes a random original.
				ids := slices.Sorted(func(yield func(uint64) bool) {
					for id := range inDispatch {
						if !yield(id) {
							return
						}
					}
				})
				id := ids[rng.IntN(len(ids))]
				r := inDispatch[id]
				delete(inDispatch, id)
				st := messages.StateDone
				if rng.IntN(3) == 0 {
					st = messages.StateDead
				}
				inFlight = append(inFlight, task.Result{ID: id, Class: r.Class, Digest: r.Digest, State: st,
					Output: []byte{byte(id)}, Attempts: 1, FinishedAt: now.UnixNano()})
			case k == 2 && len(inFlight) > 0:
				r := inFlight[0]
				inFlight = inFlight[1:]
				apply(m.Finished(now, []task.Result{r}))
			case k == 3 && arrivals && nextID > 0:
				id := 1 + uint64(rng.IntN(int(nextID)))
				if _, ok := delivered[id]; !ok {
					continue
				}
				if _, finished := records[id]; !finished {
					cancelReq[id] = true
				}
				unknown, fx := m.Cancel(now, []uint64{id})
				apply(fx)
				if len(unknown) > 0 {
					if _, finished := records[id]; !finished {
						t.Fatalf("seed %d: live task %d unknown to Cancel", seed, id)
					}
				}
			case k == 4:
				m.Tick(now)
			}
		}
		for id := range delivered {
			if _, ok := records[id]; !ok {
				t.Fatalf("seed %d: task %d never got a record (state %v)", seed, id, fmtState(m, id))
			}
		}
		for id, r := range records {
			if r.AliasOf == 0 {
				continue
			}
			orig, ok := records[r.AliasOf]
			if !ok || orig.ID == id || delivered[r.AliasOf].Digest != delivered[id].Digest {
				t.Fatalf("seed %d: %d names %d as original", seed, id, r.AliasOf)
			}
			if orig.State != messages.StateCancelled && (orig.State != r.State || !slices.Equal(orig.Output, r.Output)) {
				t.Fatalf("seed %d: duplicate %d %v %x, original %d %v %x", seed, id, r.State, r.Output, orig.ID, orig.State, orig.Output)
			}
		}
		if credits+dispatched != len(delivered) {
			t.Fatalf("seed %d: %d credits + %d dispatched != %d delivered", seed, credits, dispatched, len(delivered))
		}
		if len(m.live) != 0 || len(m.closing) != 0 {
			t.Fatalf("seed %d: state left: %d live, %d closing", seed, len(m.live), len(m.closing))
		}
	}
}

func fmtState(m *Machine, id uint64) string {
	a, l := m.State(id)
	switch {
	case !l:
		return "unknown"
	case a:
		return "attached"
	}
	return "original"
}
