package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Task types the benchmark workers handle.
const (
	typeNoop = "bench.noop"
	typeSpin = "bench.spin"
)

// env is one node on a fresh actor system and store, with its in-process
// client and workers.
type env struct {
	opt     Options
	dir     string
	system  *actor.ActorSystem
	node    *node.Node
	conn    *sdk.Conn
	client  *sdk.Client
	stopWks []func()
	closed  sync.Once
	err     error
}

// startEnv starts a node in a fresh directory under opt.Dir, with
// opt.StandbyLimit and opt.Tune applied to its configuration.
func startEnv(ctx context.Context, opt Options, label string) (*env, error) {
	dir, err := os.MkdirTemp(opt.Dir, "shoal-bench-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("create the store directory: %w", err)
	}
	logger := opt.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	cfg := node.DefaultConfig(dir)
	cfg.Logger = logger
	cfg.Pebble = opt.pebble()
	if opt.StandbyLimit > 0 {
		cfg.Intake.StandbyLimit = opt.StandbyLimit
	}
	if opt.Prefetch > 0 {
		cfg.Dispatch.Prefetch, cfg.Dispatch.MinPrefetch = opt.Prefetch, opt.Prefetch
	}
	if opt.Tune != nil {
		opt.Tune(&cfg)
	}
	n, err := node.Start(ctx, cfg, system, nil)
	if err != nil {
		system.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	conn := sdk.Local(system)
	e := &env{opt: opt, dir: dir, system: system, node: n, conn: conn, client: sdk.NewClient(conn)}
	if opt.Scrape > 0 {
		stop, err := e.startScraper() // scrape.go
		if err != nil {
			_ = e.close()
			return nil, err
		}
		e.stopWks = append(e.stopWks, stop)
	}
	return e, nil
}

// close stops the workers, then the node, and removes the store. Later
// calls return the first call's error.
func (e *env) close() error {
	e.closed.Do(func() {
		for _, stop := range e.stopWks {
			stop()
		}
		e.err = e.node.Stop()
		e.system.Shutdown()
		if !e.opt.KeepData {
			e.err = errors.Join(e.err, os.RemoveAll(e.dir))
		}
	})
	return e.err
}

// startWorkers starts n workers of slots slots running h for typ and waits
// until the node lists them. The returned function stops them (also done by
// close).
func (e *env) startWorkers(ctx context.Context, n, slots int, typ string, sampleLoad bool, h sdk.Handler) (func(), error) {
	wctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		w := sdk.NewWorker(e.conn, sdk.WorkerConfig{
			ID: fmt.Sprintf("bench-%s-%d", typ, i), Slots: slots, NoLoad: !sampleLoad, Logger: e.opt.Logger,
		})
		w.Handle(typ, h)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(wctx); err != nil {
				errs <- err
			}
		}()
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	e.stopWks = append(e.stopWks, stop)
	// Wait for the registrations so that timing starts with executors attached.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.node.Status(ctx)
		if err == nil && len(st.Executors) >= n {
			return stop, nil
		}
		select {
		case err := <-errs:
			stop()
			return nil, fmt.Errorf("worker refused: %w", err)
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("workers did not register within 30 s")
		}
	}
}

// counts asks the node for its counters; a node too busy to answer within
// 5 s yields zero counts (progress shows nothing, waits poll again).
func (e *env) counts() task.Counters {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _ := e.node.Counters(ctx)
	return c
}

// finished is the number of tasks with a durable terminal result.
func (e *env) finished() int64 { return e.counts().Finished() }

// waitFinished returns once want tasks have a durable terminal result
// (the node's result hub answers when its count gets there: no polling).
func (e *env) waitFinished(ctx context.Context, want int64) error {
	if _, err := e.node.AwaitFinished(ctx, want); err != nil {
		return fmt.Errorf("waiting for %d durable results (have %d): %w", want, e.finished(), err)
	}
	return nil
}

// counters copies the node's counters into res.
func (e *env) counters(res *Result) {
	c := e.counts()
	res.Metrics["node_accepted"] = float64(c.Accepted)
	res.Metrics["node_done"] = float64(c.Done)
	res.Metrics["node_deduplicated"] = float64(c.Deduplicated)
	if c.Dead > 0 {
		res.Metrics["node_dead"] = float64(c.Dead)
	}
	res.Metrics["standby_max"] = float64(c.StandbyPeak)
}

// submitRetrying submits one batch; a node that refuses it as overloaded
// (its standby limit: explicit backpressure) is asked again after a backoff
// of 2 ms doubling to 100 ms, as a production client would. overloaded
// (optional) counts the refusals.
func submitRetrying(ctx context.Context, c *sdk.Client, tasks []sdk.Task, overloaded *atomic.Int64) ([]uint64, error) {
	backoff := 2 * time.Millisecond
	for {
		ids, err := c.SubmitBatch(ctx, tasks)
		if !errors.Is(err, messages.ErrOverloaded) {
			return ids, err
		}
		if overloaded != nil {
			overloaded.Add(1)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// submitBatches submits tasks 0..n-1 in batches of batch from producers
// goroutines (batch indices are taken in order); batch b goes to
// clients[b % len(clients)] (one client per node of a cluster). acked counts acknowledged
// tasks; onAck, when set, gets each batch's first index and ids.
func submitBatches(ctx context.Context, clients []*sdk.Client, n, batch, producers int, build func(i int) sdk.Task,
	acked, overloaded *atomic.Int64, onAck func(first int, ids []uint64)) error {
	nb := (n + batch - 1) / batch
	var next atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tasks := make([]sdk.Task, 0, batch)
			for ctx.Err() == nil {
				b := int(next.Add(1)) - 1
				if b >= nb {
					return
				}
				first := b * batch
				tasks = tasks[:0]
				for i := first; i < min(first+batch, n); i++ {
					tasks = append(tasks, build(i))
				}
				ids, err := submitRetrying(ctx, clients[b%len(clients)], tasks, overloaded)
				if err != nil {
					cancel(fmt.Errorf("submit batch %d (tasks %d..%d): %w", b, first, first+len(tasks)-1, err))
					return
				}
				acked.Add(int64(len(ids)))
				if onAck != nil {
					onAck(first, ids)
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx) // nil unless a producer failed or ctx ended
}

// Payloads: 8 bytes task index, 8 bytes run nonce, then filler derived from
// the index. Unique per index within a run, and across runs.
const minPayload = 16

type payloads struct {
	nonce uint64
	size  int
}

func newPayloads(size int) payloads {
	return payloads{nonce: uint64(time.Now().UnixNano()), size: size}
}

func (p payloads) make(i uint64) []byte {
	b := make([]byte, p.size)
	p.fill(b, i)
	return b
}

func (p payloads) fill(b []byte, i uint64) {
	binary.LittleEndian.PutUint64(b, i)
	binary.LittleEndian.PutUint64(b[8:], p.nonce)
	x := i*0x9E3779B97F4A7C15 + p.nonce
	for j := 16; j < len(b); j += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[j:], w[:])
	}
}

func payloadIndex(b []byte) uint64 {
	if len(b) < 8 {
		return ^uint64(0)
	}
	return binary.LittleEndian.Uint64(b)
}

// progress prints a line about every second while a phase runs.
type progress struct {
	stop chan struct{}
	done chan struct{}
}

// startProgress prints "label: done/total rate" every second to w (nothing
// when w is nil) until the returned function is called.
func startProgress(w io.Writer, label string, total int64, count func() int64) func() {
	if w == nil {
		return func() {}
	}
	p := &progress{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, last, lastAt := time.Now(), count(), time.Now()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				c := count()
				rate := float64(c-last) / now.Sub(lastAt).Seconds()
				last, lastAt = c, now
				if total > 0 {
					fmt.Fprintf(w, "%s: %d/%d (%.0f%%) %.0f/s, %.0fs\n", label, c, total, 100*float64(c)/float64(total), rate, now.Sub(start).Seconds())
				} else {
					fmt.Fprintf(w, "%s: %d %.0f/s, %.0fs\n", label, c, rate, now.Sub(start).Seconds())
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(p.stop)
			<-p.done
		})
	}
}

// noopHandler counts executions.
func noopHandler(execs *atomic.Int64) sdk.Handler {
	return func(context.Context, messages.Task) ([]byte, error) {
		execs.Add(1)
		return nil, nil
	}
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round(float64(n)/d.Seconds(), 0)
}

func secs(d time.Duration) float64 { return round(d.Seconds(), 3) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// storeStats records the store's group-commit figures (fsyncs, requests per
// fsync) when the store exposes them, and returns its commit count (0 when
// it does not).
func (e *env) storeStats(res *Result) (commits uint64) {
	s, ok := e.node.Store().(interface{ Stats() store.PebbleStats })
	if !ok {
		return 0
	}
	st := s.Stats()
	res.Metrics["store_fsyncs"] = float64(st.Syncs)
	if st.Syncs > 0 {
		res.Metrics["store_commits_per_fsync"] = round(float64(st.Commits)/float64(st.Syncs), 1)
	}
	return st.Commits
}
