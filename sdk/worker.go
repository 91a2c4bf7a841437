package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/internal/mailbox"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk/executor"
)

// Handler runs one task (see executor.Handler).
type Handler = executor.Handler

// Permanent marks an error as not worth retrying.
func Permanent(err error) error { return executor.Permanent(err) }

// WorkerConfig configures a worker.
type WorkerConfig struct {
	// ID names the executor. Default: hostname-pid-random.
	ID string
	// Slots is how many tasks run at once. Default 4 × GOMAXPROCS.
	Slots int
	// Capabilities are labels and tool versions offered to requirements.
	Capabilities map[string]string
	// Token authenticates the worker to the node.
	Token string
	// Logger receives the worker's logs. Default: discard.
	Logger *slog.Logger
	// NoLoad turns off /proc load sampling (reports zero load).
	NoLoad bool
	// Health, when set, is the worker's own health check, run before each
	// heartbeat; an error makes the node's supervisor evict the worker
	// (docs/supervision.md).
	Health func() error
	// Spawn, when set, starts the worker's executor actor (for example
	// node.SpawnExecutor, under the node's supervisor, in-process only).
	// Default: a top-level actor of the connection's system.
	Spawn func(id string, props *actor.Props) (*actor.PID, error)
}

// Validate names the first bad field. Zero values take their defaults.
func (c WorkerConfig) Validate() error {
	switch {
	case c.Slots < 0:
		return fmt.Errorf("%w: WorkerConfig.Slots must be >= 0 (0: 4 × GOMAXPROCS), got %d", ErrInvalidConfig, c.Slots)
	}
	for k, v := range c.Capabilities {
		if k == "" {
			return fmt.Errorf("%w: WorkerConfig.Capabilities has an empty key (value %q)", ErrInvalidConfig, v)
		}
	}
	return nil
}

// Worker runs handlers for the task types it registers.
type Worker struct {
	conn     *Conn
	cfg      WorkerConfig
	handlers map[string]Handler
	invalid  error // cfg.Validate as given to NewWorker, returned by Run
}

// NewWorker returns a worker over conn. A cfg that does not validate makes
// Run fail with an error wrapping ErrInvalidConfig.
func NewWorker(conn *Conn, cfg WorkerConfig) *Worker {
	invalid := cfg.Validate()
	if cfg.Slots <= 0 {
		cfg.Slots = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), time.Now().UnixNano()&0xffffff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{conn: conn, cfg: cfg, handlers: map[string]Handler{}, invalid: invalid}
}

// Handle registers the handler of a task type. Call before Run.
func (w *Worker) Handle(taskType string, h Handler) { w.handlers[taskType] = h }

// ID is the worker's executor id.
func (w *Worker) ID() string { return w.cfg.ID }

// Run registers with the node and runs tasks until ctx ends. It returns an
// error at once if the node refuses the registration (bad token, version).
func (w *Worker) Run(ctx context.Context) error {
	if w.invalid != nil {
		return fmt.Errorf("sdk: worker %s: %w", w.cfg.ID, w.invalid)
	}
	if len(w.handlers) == 0 {
		return fmt.Errorf("sdk: worker %s has no handlers; call Handle first", w.cfg.ID)
	}
	ecfg := executor.Config{ID: w.cfg.ID, Slots: w.cfg.Slots, Capabilities: w.cfg.Capabilities, Token: w.cfg.Token,
		LoadInterval: time.Second, MaxBatch: 1024}
	if err := ecfg.Validate(); err != nil {
		return err
	}
	refused := make(chan *messages.Error, 1)
	deps := executor.Deps{
		Dispatch: w.conn.PID(messages.ActorDispatch), Transport: w.conn.Transport, Handlers: w.handlers, Logger: w.cfg.Logger, Health: w.cfg.Health,
		OnRegistered: func(r *messages.Registered) {
			if r.Err != nil && (r.Err.Code == messages.CodeUnauthorized || r.Err.Code == messages.CodeVersion) {
				select {
				case refused <- r.Err:
				default:
				}
			}
		},
	}
	if !w.cfg.NoLoad {
		deps.Sampler = executor.NewLoadSampler("/proc")
	}
	// A pooled dispatcher keeps the executor's mailbox goroutine (and its
	// grown stack) between messages (internal/mailbox); closed after the
	// actor stopped (defers run last-in first-out).
	pool := mailbox.NewPool(0, 2)
	defer pool.Close()
	props := executor.Props(ecfg, deps).Configure(w.conn.Props...).Configure(actor.WithDispatcher(pool))
	var pid *actor.PID
	if w.cfg.Spawn != nil {
		p, err := w.cfg.Spawn(w.cfg.ID, props)
		if err != nil {
			return fmt.Errorf("sdk: worker %s: %w", w.cfg.ID, err)
		}
		pid = p
	} else {
		pid = w.conn.System.Root.Spawn(props)
	}
	defer func() { _ = w.conn.System.Root.StopFuture(pid).Wait() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-refused:
		return err
	}
}
