package executor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// A Register sent before the node's dispatcher exists is dropped without an
// answer (a node's remote accepts connections while the node still starts,
// e.g. while it waits to join its cluster). The executor registers again
// until it is answered instead of waiting for ever.
func TestRegisterRetriesUntilAnswered(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	dispatch := actor.NewPID(system.Address(), "late-dispatch")
	cfg := Config{ID: "e1", Slots: 1, LoadInterval: time.Second, MaxBatch: 8}
	deps := Deps{Dispatch: dispatch, Transport: actorio.Local{}, Logger: slog.New(slog.DiscardHandler),
		Handlers: map[string]Handler{"noop": func(context.Context, messages.Task) ([]byte, error) { return nil, nil }}}
	registered := make(chan struct{})
	deps.OnRegistered = func(r *messages.Registered) {
		if r.Err == nil {
			close(registered)
		}
	}
	exec := system.Root.Spawn(Props(cfg, deps))
	defer func() { _ = system.Root.StopFuture(exec).Wait() }()

	time.Sleep(200 * time.Millisecond) // the first Register is dropped: no dispatcher yet
	got := make(chan *messages.Register, 16)
	fake, err := system.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *messages.Register:
			got <- m
			c.Respond(&messages.Registered{HeartbeatMillis: 60_000})
		case *messages.Pull, *messages.Heartbeat:
			c.Respond(&messages.Grant{})
		}
	}), "late-dispatch")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = system.Root.StopFuture(fake).Wait() }()
	select {
	case r := <-got:
		if r.ExecutorID != "e1" {
			t.Fatalf("register from %q", r.ExecutorID)
		}
	case <-time.After(4 * RegisterRetry):
		t.Fatal("the executor never registered again after its first Register was dropped")
	}
	select {
	case <-registered:
	case <-time.After(10 * time.Second):
		t.Fatal("Registered never reached the executor")
	}
}

// A grant larger than the slots' channel must not block the executor's
// mailbox: heartbeats go on while every slot is busy, and every granted
// task runs once the slots free.
func TestBigGrantDoesNotBlockHeartbeats(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	const tasks = 3000 // more than the work channel holds for one slot
	release := make(chan struct{})
	ran := make(chan uint64, tasks)
	heartbeats := make(chan struct{}, 64)
	var results int
	allDone := make(chan struct{})
	granted := false
	fake, err := system.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *messages.Register:
			c.Respond(&messages.Registered{HeartbeatMillis: 10})
		case *messages.Pull:
			results += len(m.Results)
			if !granted {
				granted = true
				g := &messages.Grant{}
				for i := range tasks {
					g.Tasks = append(g.Tasks, messages.Task{ID: uint64(i + 1), Type: "block"})
				}
				c.Respond(g)
			}
			if results == tasks {
				close(allDone)
			}
		case *messages.Heartbeat:
			results += len(m.Results)
			select {
			case heartbeats <- struct{}{}:
			default:
			}
			if results == tasks {
				close(allDone)
			}
		}
	}), "big-grant-dispatch")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = system.Root.StopFuture(fake).Wait() }()
	cfg := Config{ID: "e1", Slots: 1, LoadInterval: time.Second, MaxBatch: 4096}
	deps := Deps{Dispatch: fake, Transport: actorio.Local{}, Logger: slog.New(slog.DiscardHandler),
		Handlers: map[string]Handler{"block": func(_ context.Context, tk messages.Task) ([]byte, error) {
			<-release
			ran <- tk.ID
			return nil, nil
		}}}
	exec := system.Root.Spawn(Props(cfg, deps))
	defer func() { _ = system.Root.StopFuture(exec).Wait() }()
	for range 3 { // the slot is stuck on the first task; the rest wait
		select {
		case <-heartbeats:
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat while the slots were full: the hand-off blocked the mailbox")
		}
	}
	close(release)
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d of %d tasks ran", len(ran), tasks)
	}
}
