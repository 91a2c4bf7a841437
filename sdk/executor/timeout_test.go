package executor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// TestTimeoutEndsTheHandler: a task with a run timeout runs under a
// context with that deadline even when the node never revokes it, and the
// attempt reports a timeout error.
func TestTimeoutEndsTheHandler(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	results := make(chan messages.Result, 4)
	granted := false
	fake, err := system.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		var rs []messages.Result
		switch m := c.Message().(type) {
		case *messages.Register:
			c.Respond(&messages.Registered{HeartbeatMillis: 60_000, LeaseTTLMillis: 300_000})
			return
		case *messages.Pull:
			rs = m.Results
		case *messages.Heartbeat:
			rs = m.Results
		default:
			return
		}
		for _, r := range rs {
			results <- r
		}
		if _, ok := c.Message().(*messages.Pull); ok && !granted {
			granted = true
			c.Respond(&messages.Grant{Tasks: []messages.Task{{ID: 1, Type: "hang", Attempt: 1, TimeoutMillis: 50}}})
		}
	}), "timeout-dispatch")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = system.Root.StopFuture(fake).Wait() }()
	var deadline bool
	cfg := Config{ID: "e1", Slots: 1, LoadInterval: time.Second, MaxBatch: 8}
	deps := Deps{Dispatch: fake, Transport: actorio.Local{}, Logger: slog.New(slog.DiscardHandler),
		Handlers: map[string]Handler{"hang": func(ctx context.Context, _ messages.Task) ([]byte, error) {
			_, deadline = ctx.Deadline()
			<-ctx.Done()
			return nil, ctx.Err()
		}}}
	exec := system.Root.Spawn(Props(cfg, deps))
	defer func() { _ = system.Root.StopFuture(exec).Wait() }()
	select {
	case r := <-results:
		if r.OK || !strings.HasPrefix(r.Error, "timeout: ") || !strings.Contains(r.Error, context.DeadlineExceeded.Error()) || !deadline {
			t.Fatalf("result %+v (handler saw a deadline: %v), want a timeout error", r, deadline)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hung handler was never ended by its timeout")
	}
}
