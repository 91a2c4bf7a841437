package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/queue"
	"github.com/shoalrt/shoal/actors/queue/dedupe"
	"github.com/shoalrt/shoal/actors/queue/dispatch"
	"github.com/shoalrt/shoal/actors/queue/pump"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk/executor"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// fakeLauncher starts processes that exit at once (a worker crashing on
// start). Real processes cannot run in a synctest bubble; the process
// tests in cmd/shoal cover the real launcher.
type fakeLauncher struct {
	mu     sync.Mutex
	starts []time.Time
}

func (l *fakeLauncher) Start(id string) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts = append(l.starts, time.Now())
	return crashing{}, nil
}

func (l *fakeLauncher) startTimes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.starts)
}

type crashing struct{}

func (crashing) Wait() error { return errors.New("exit status 2") }
func (crashing) Kill()       {}
func (crashing) Terminate()  {}
func (crashing) Pid() int    { return 1 }

type sinkRecorder struct {
	mu     sync.Mutex
	alerts []messages.Alert
}

func (r *sinkRecorder) Name() string { return "recorder" }
func (r *sinkRecorder) Send(_ context.Context, a messages.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
	return nil
}

func (r *sinkRecorder) got() []messages.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.alerts)
}

// finished collects what the dispatcher sends dedupe and the pump.
type finished struct {
	mu  sync.Mutex
	ids []uint64
}

func (f *finished) receive(c actor.Context) {
	if m, ok := c.Message().(task.Completed); ok {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range m.Results {
			f.ids = append(f.ids, r.ID)
		}
	}
}

func (f *finished) got() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

// startNode spawns a real queue (the dispatcher and its pump and dedupe,
// over a real Pebble store) and the supervisor on a local system; the
// queue's durable results land in fin.
func startNode(t *testing.T, cfg Config, d Deps, fin *finished) (*actor.ActorSystem, *actor.PID, *actor.PID) {
	t.Helper()
	st, err := store.OpenPebble(store.DefaultPebbleConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	system := actor.NewActorSystem()
	qcfg := queue.Config{Pump: pump.DefaultConfig(), Dedupe: dedupe.DefaultConfig(), Dispatch: dispatch.DefaultConfig(), Timing: queue.DefaultTiming()}
	sink := system.Root.Spawn(actor.PropsFromFunc(fin.receive))
	dpid, err := system.Root.SpawnNamed(queue.Props(qcfg, queue.Deps{Store: st, Results: sink, Transport: actorio.Local{}, Logger: discard(), Now: time.Now}), messages.ActorDispatch)
	if err != nil {
		t.Fatal(err)
	}
	d.Dispatch = dpid
	spid, err := system.Root.SpawnNamed(Props(cfg, "n1", d), "shoal-supervisor")
	if err != nil {
		t.Fatal(err)
	}
	return system, dpid, spid
}

func stopAll(system *actor.ActorSystem, pids ...*actor.PID) {
	for _, p := range pids {
		_ = system.Root.StopFuture(p).Wait()
	}
	// A message to an actor stopped just now is a dead letter, and
	// protoactor's dead-letter throttle then waits out a 1 s ticker in its
	// own goroutine: let fake time pass it, or the bubble ends with that
	// goroutine blocked (synctest panics).
	time.Sleep(2 * system.Config.DeadLetterThrottleInterval)
	synctest.Wait()
}

func view(t *testing.T, system *actor.ActorSystem, spid *actor.PID) View {
	t.Helper()
	res, err := system.Root.RequestFuture(spid, ViewRequest{}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res.(View)
}

// TestCrashOnStartBackoffInFakeTime: a launched executor that exits at once
// is restarted after 500 ms, 1 s, 2 s (the backoff doubling, in synctest's
// fake time, exactly), and its fourth failure raises one alert through the
// sinks and marks it failed; it is not started again.
func TestCrashOnStartBackoffInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxRestarts, cfg.Interval, cfg.SleepPolicy = 3, 100*time.Millisecond, SleepOff
		l := &fakeLauncher{}
		rec := &sinkRecorder{}
		system, dpid, spid := startNode(t, cfg, Deps{Launcher: l, Launch: []string{"w1"}, Sinks: []Sink{rec}, Logger: discard()}, &finished{})
		t0 := time.Now()
		time.Sleep(time.Minute)
		synctest.Wait()
		starts := l.startTimes()
		var offsets []time.Duration
		for _, s := range starts {
			offsets = append(offsets, s.Sub(t0))
		}
		// Restarts happen on the first check (every 100 ms) after the
		// backoff: 500 ms after the exit at 0, 1 s after the one at 500 ms...
		want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond}
		if !slices.Equal(offsets, want) {
			t.Fatalf("starts at %v, want %v", offsets, want)
		}
		alerts := rec.got()
		if len(alerts) != 1 || alerts[0].Kind != KindRestartLimit || alerts[0].Executor != "w1" || alerts[0].Failures != 4 {
			t.Fatalf("alerts %+v, want one restart_limit for w1 after 4 failures", alerts)
		}
		v := view(t, system, spid)
		if len(v.Extra) != 1 || v.Extra[0].State != messages.ExecFailed || v.Extra[0].Restarts != 3 || len(v.Alerts) != 1 {
			t.Fatalf("view %+v", v)
		}
		stopAll(system, spid, dpid)
	})
}

// TestSleepAfterIdleInFakeTime: an idle in-process executor is put to sleep
// once SleepAfter passes (checked every Interval), heartbeats slowly, and a
// task enqueued for it wakes it.
func TestSleepAfterIdleInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.SleepAfter, cfg.MinActive, cfg.Interval = 30*time.Second, 0, time.Second
		fin := &finished{}
		system, dpid, spid := startNode(t, cfg, Deps{Logger: discard()}, fin)
		epid := spawnExecutor(t, system, spid, dpid, "e1", nil)
		state := func() string {
			res, err := system.Root.RequestFuture(dpid, task.SnapshotRequest{}, time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range res.(task.Snapshot).Executors {
				if e.ID == "e1" {
					return e.State
				}
			}
			return ""
		}
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if s := state(); s != messages.ExecActive {
			t.Fatalf("after 29 s idle: %q, want active", s)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s := state(); s != messages.ExecSleeping {
			t.Fatalf("after 31 s idle: %q, want sleeping", s)
		}
		// Asleep for a long while it keeps heartbeating: the dispatcher
		// does not expire it (lease TTL 15 s).
		time.Sleep(time.Minute)
		synctest.Wait()
		if s := state(); s != messages.ExecSleeping {
			t.Fatalf("after a minute asleep: %q, want sleeping", s)
		}
		// Work it can run wakes it at once, and it runs it.
		system.Root.Send(dpid, task.Persisted{Tasks: []task.Record{{ID: 7, Type: "t", MaxAttempts: 3}}})
		synctest.Wait()
		if s := state(); s != messages.ExecActive {
			t.Fatalf("after a task arrived: %q, want active", s)
		}
		time.Sleep(10 * time.Millisecond) // the queue batches result commits (FlushDelay)
		synctest.Wait()
		if got := fin.got(); !slices.Equal(got, []uint64{7}) {
			t.Fatalf("finished %v, want [7]", got)
		}
		stopAll(system, epid, spid, dpid)
	})
}

// spawnExecutor starts a real executor actor under the supervisor; mw, when
// set, is a receiver middleware (fault injection).
func spawnExecutor(t *testing.T, system *actor.ActorSystem, spid, dpid *actor.PID, id string, registered func(*messages.Registered), mw ...actor.ReceiverMiddleware) *actor.PID {
	t.Helper()
	cfg := executor.Config{ID: id, Slots: 1, LoadInterval: time.Second, MaxBatch: 16}
	props := executor.Props(cfg, executor.Deps{Dispatch: dpid, Transport: actorio.Local{}, Logger: discard(),
		Handlers:     map[string]executor.Handler{"t": func(context.Context, messages.Task) ([]byte, error) { return nil, nil }},
		OnRegistered: registered})
	if len(mw) > 0 {
		props = props.Configure(actor.WithReceiverMiddleware(mw...))
	}
	res, err := system.Root.RequestFuture(spid, Spawn{ID: id, Props: props}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	sr := res.(SpawnResult)
	if sr.Err != nil {
		t.Fatal(sr.Err)
	}
	return sr.PID
}

type boom struct{}

// TestPanickingExecutorActorRestarted: an in-process executor actor that
// panics is restarted by protoactor's OneForOne strategy (a fresh actor
// that registers again); past MaxRestarts it is stopped and an alert is
// raised.
func TestPanickingExecutorActorRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxRestarts, cfg.SleepPolicy = 2, SleepOff
		rec := &sinkRecorder{}
		system, dpid, spid := startNode(t, cfg, Deps{Sinks: []Sink{rec}, Logger: discard()}, &finished{})
		var mu sync.Mutex
		registrations := 0
		panicky := func(next actor.ReceiverFunc) actor.ReceiverFunc {
			return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
				if _, ok := env.Message.(boom); ok {
					panic("injected fault")
				}
				next(c, env)
			}
		}
		epid := spawnExecutor(t, system, spid, dpid, "e1", func(r *messages.Registered) {
			mu.Lock()
			defer mu.Unlock()
			if r.Err == nil {
				registrations++
			}
		}, panicky)
		synctest.Wait()
		regs := func() int { mu.Lock(); defer mu.Unlock(); return registrations }
		if regs() != 1 {
			t.Fatalf("registrations %d, want 1", regs())
		}
		for i := range 2 {
			system.Root.Send(epid, boom{})
			time.Sleep(time.Second) // protoactor's restart backoff
			synctest.Wait()
			if regs() != i+2 {
				t.Fatalf("after panic %d: registrations %d, want %d (restarted, registered again)", i+1, regs(), i+2)
			}
		}
		if len(rec.got()) != 0 {
			t.Fatalf("alert before the limit: %+v", rec.got())
		}
		system.Root.Send(epid, boom{})
		time.Sleep(time.Second)
		synctest.Wait()
		alerts := rec.got()
		if len(alerts) != 1 || alerts[0].Kind != KindActorLimit || alerts[0].Executor != "e1" {
			t.Fatalf("alerts %+v, want one actor_limit for e1", alerts)
		}
		if regs() != 3 {
			t.Fatalf("registrations %d after the last panic, want 3 (stopped, not restarted)", regs())
		}
		stopAll(system, spid, dpid)
	})
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
