package queue

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/queue/dedupe"
	"github.com/shoalrt/shoal/actors/queue/dispatch"
	"github.com/shoalrt/shoal/actors/queue/pump"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// sink records what the queue sends it.
type sink struct {
	mu   sync.Mutex
	msgs []any
}

func (s *sink) receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, c.Message())
}

func (s *sink) got() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

type fixture struct {
	system                *actor.ActorSystem
	st                    *store.Pebble
	q                     *actor.PID
	intake, results, flow *sink
}

// start runs a queue over a real Pebble store with one queue place per
// class, so that the second task of a class waits in standby.
func start(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenPebble(store.DefaultPebbleConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{system: actor.NewActorSystem(), st: st, intake: &sink{}, results: &sink{}, flow: &sink{}}
	spawn := func(s *sink) *actor.PID { return f.system.Root.Spawn(actor.PropsFromFunc(s.receive)) }
	cfg := Config{Pump: pump.DefaultConfig(), Dedupe: dedupe.DefaultConfig(), Dispatch: dispatch.DefaultConfig(), Timing: DefaultTiming()}
	cfg.Dispatch.Capacity = [messages.NumClasses]int{1, 1, 1}
	f.q = f.system.Root.Spawn(Props(cfg, Deps{Store: st, Intake: spawn(f.intake), Results: spawn(f.results), Flows: spawn(f.flow),
		Transport: actorio.Local{}, Logger: slog.New(slog.DiscardHandler), Now: time.Now}))
	t.Cleanup(func() {
		_ = f.system.Root.StopFuture(f.q).Wait()
		st.Close()
	})
	return f
}

// persist commits tasks and hands them to the queue, as intake does.
func (f *fixture) persist(t *testing.T, recs ...task.Record) {
	t.Helper()
	if err := f.st.Commit(context.Background(), &store.Batch{Tasks: recs}); err != nil {
		t.Fatal(err)
	}
	f.system.Root.Send(f.q, task.Persisted{Tasks: recs})
}

func (f *fixture) ask(t *testing.T, msg any) any {
	t.Helper()
	res, err := f.system.Root.RequestFuture(f.q, msg, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func rec(id uint64, typ string) task.Record {
	return task.Record{ID: id, Type: typ, Class: messages.ClassNormal, MaxAttempts: 3, Digest: task.Digest{byte(id)}}
}

// TestCancelStandby: a standby task (its class's one queue place is
// taken) is cancelled durably before the answer, and the result hub hears
// of it; the queued task is cancelled live.
func TestCancelStandby(t *testing.T) {
	f := start(t)
	f.persist(t, rec(1, "a"), rec(2, "a"))
	loc := f.ask(t, task.LocateRequest{IDs: []uint64{1, 2}}).([]task.Location)
	if loc[0].State != messages.StateQueued || loc[1].State != messages.StateStandby {
		t.Fatalf("located %+v, want 1 queued and 2 in standby", loc)
	}
	if c := f.ask(t, task.CountersRequest{}).(task.Counters); c.Standby != 1 || c.StandbyPeak != 1 {
		t.Fatalf("counters %+v, want standby 1 (peak 1)", c)
	}
	// The standby task first: cancelling the queued one frees its place,
	// and the pump would hand task 2 on (live tasks are cancelled
	// asynchronously; Wait shows the final state).
	out := f.ask(t, &messages.Cancel{IDs: []uint64{2, 99}}).(*messages.Outcomes)
	if out.Err != nil || len(out.Outcomes) != 2 || out.Outcomes[0].State != messages.StateCancelled || out.Outcomes[1].State != messages.StateUnknown {
		t.Fatalf("cancel: %+v, want 2 cancelled and 99 unknown", out)
	}
	r, ok, err := f.st.Result(context.Background(), 2)
	if err != nil || !ok || r.State != messages.StateCancelled {
		t.Fatalf("standby task's durable result: %+v %v %v, want cancelled", r, ok, err)
	}
	out = f.ask(t, &messages.Cancel{IDs: []uint64{1}}).(*messages.Outcomes)
	if out.Err != nil || len(out.Outcomes) != 1 || out.Outcomes[0].State != messages.StateCancelled {
		t.Fatalf("cancel of the queued task: %+v", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ids []uint64
		for _, m := range f.results.got() {
			if c, ok := m.(task.Completed); ok {
				for _, r := range c.Results {
					ids = append(ids, r.ID)
				}
			}
		}
		slices.Sort(ids)
		if slices.Equal(ids, []uint64{1, 2}) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("result hub heard %v, want both cancelled tasks", f.results.got())
}

// TestFlowTasksGoToTheRunner: dedupe's originals of the flow type go to the
// flow runner, the rest to the dispatcher; intake hears how many were taken
// in. (A flow task takes a queue place too: the plain one is of another
// class.)
func TestFlowTasksGoToTheRunner(t *testing.T) {
	f := start(t)
	plain := rec(2, "a")
	plain.Class = messages.ClassHigh
	f.persist(t, rec(1, messages.FlowTaskType), plain)
	snap := f.ask(t, task.SnapshotRequest{}).(task.Snapshot)
	if snap.Queued != [messages.NumClasses]int{messages.ClassHigh: 1} {
		t.Fatalf("dispatcher queues %v, want the one plain task", snap.Queued)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var flows []uint64
		for _, m := range f.flow.got() {
			if e, ok := m.(task.Enqueue); ok {
				for _, r := range e.Tasks {
					flows = append(flows, r.ID)
				}
			}
		}
		var placed int64
		for _, m := range f.intake.got() {
			if w, ok := m.(task.Waiting); ok {
				placed = w.Placed
			}
		}
		if slices.Equal(flows, []uint64{1}) && placed == 2 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("runner got %v, intake %v; want flow task 1 and Placed 2", f.flow.got(), f.intake.got())
}

// TestLargeBatchesTakenInOrder: batches larger than a turn's chunk, sent
// back to back, are taken in over several turns without reordering (the
// pump would skip a task below its cursor): every task ends up queued.
func TestLargeBatchesTakenInOrder(t *testing.T) {
	st, err := store.OpenPebble(store.DefaultPebbleConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	system := actor.NewActorSystem()
	cfg := Config{Pump: pump.DefaultConfig(), Dedupe: dedupe.DefaultConfig(), Dispatch: dispatch.DefaultConfig(), Timing: DefaultTiming()}
	q := system.Root.Spawn(Props(cfg, Deps{Store: st, Transport: actorio.Local{}, Logger: slog.New(slog.DiscardHandler), Now: time.Now}))
	defer func() { _ = system.Root.StopFuture(q).Wait() }()
	var id uint64
	batch := func(n int) []task.Record {
		out := make([]task.Record, n)
		for i := range out {
			id++
			out[i] = task.Record{ID: id, Type: "a", Class: messages.ClassNormal, MaxAttempts: 3, Digest: task.Digest{byte(id), byte(id >> 8)}}
		}
		return out
	}
	for _, n := range []int{3*inboxChunk + 5, inboxChunk / 2, 2 * inboxChunk} {
		system.Root.Send(q, task.Persisted{Tasks: batch(n)})
	}
	// Other messages are answered between the chunks: wait for the last.
	got, deadline := 0, time.Now().Add(5*time.Second)
	for got != int(id) && time.Now().Before(deadline) {
		res, err := system.Root.RequestFuture(q, task.SnapshotRequest{}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		got = res.(task.Snapshot).Queued[messages.ClassNormal]
	}
	if got != int(id) {
		t.Fatalf("queued %d of %d tasks", got, id)
	}
}
