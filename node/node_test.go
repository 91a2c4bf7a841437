package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/store"
)

func startNode(t *testing.T, dir string, mut func(*node.Config)) (*node.Node, *sdk.Conn) {
	t.Helper()
	system := actor.NewActorSystem()
	cfg := node.DefaultConfig(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mut != nil {
		mut(&cfg)
	}
	n, err := node.Start(context.Background(), cfg, system, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n, sdk.Local(system)
}

func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, conn := startNode(t, t.TempDir(), nil)
	defer n.Stop()

	var runs atomic.Int64
	w := sdk.NewWorker(conn, sdk.WorkerConfig{Slots: 8, NoLoad: true})
	w.Handle("echo", func(ctx context.Context, t messages.Task) ([]byte, error) {
		runs.Add(1)
		return append([]byte("out:"), t.Payload...), nil
	})
	w.Handle("fail", func(ctx context.Context, t messages.Task) ([]byte, error) {
		return nil, sdk.Permanent(errors.New("boom"))
	})
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)

	c := sdk.NewClient(conn)
	var tasks []sdk.Task
	for i := range 1000 {
		tasks = append(tasks, sdk.Task{Type: "echo", Payload: fmt.Appendf(nil, "p%d", i%800), Priority: int32(i % 101)})
	}
	ids, err := c.SubmitBatch(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Wait(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		want := fmt.Sprintf("out:p%d", i%800)
		if o.State != messages.StateDone || string(o.Output) != want {
			t.Fatalf("task %d: state %v output %q, want done %q", i, o.State, o.Output, want)
		}
	}
	if got := runs.Load(); got != 800 {
		t.Fatalf("handler ran %d times, want 800 (200 duplicates)", got)
	}
	fid, err := c.Submit(ctx, sdk.Task{Type: "fail", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Result(ctx, fid)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != messages.StateDead || o.Error != "boom" {
		t.Fatalf("failing task: %+v", o)
	}
	if _, err := c.Submit(ctx, sdk.Task{Type: "echo", Priority: 101}); !errors.Is(err, messages.ErrBadPriority) {
		t.Fatalf("bad priority: got %v", err)
	}
}

// A bad store option fails Validate and Start, naming the field; with a
// PostgreSQL store the Pebble options are ignored.
func TestConfigPebbleOptions(t *testing.T) {
	cfg := node.DefaultConfig(t.TempDir())
	cfg.Pebble.MemTableSize = 1
	err := cfg.Validate()
	if !errors.Is(err, store.ErrInvalidConfig) || !strings.Contains(err.Error(), "MemTableSize") {
		t.Fatalf("Validate with MemTableSize 1 = %v; want store.ErrInvalidConfig naming MemTableSize", err)
	}
	if _, err := node.Start(context.Background(), cfg, actor.NewActorSystem(), nil); !errors.Is(err, store.ErrInvalidConfig) {
		t.Fatalf("Start with MemTableSize 1 = %v; want store.ErrInvalidConfig", err)
	}
	cfg.Store = "postgres://localhost/shoal"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with a postgres store and bad Pebble options = %v; want nil (ignored)", err)
	}
	// A smaller memtable is used: the node starts and takes a task.
	n, conn := startNode(t, t.TempDir(), func(c *node.Config) { c.Pebble.MemTableSize = 4 << 20 })
	defer n.Stop()
	if _, err := sdk.NewClient(conn).Submit(context.Background(), sdk.Task{Type: "noop", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}
