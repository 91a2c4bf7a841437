// Package agent is the host side of the instruction table (seed 003, S3.2):
// a long-running process on a host that cannot speak the executor protocol
// (a mainframe partition, a locked-down server) but can reach the database.
// It takes task instructions for its host and types atomically, runs a
// handler per type (an operator's command: payload on stdin, result from
// stdout), renews its lease while the handler runs, writes the result, and
// reports the host's resources into the node-status table on a timer.
//
// It knows only the table: no actor, no connection to a node.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/hosts/internal/group"
	"github.com/shoalrt/shoal/hosts/table"
)

// Handler runs one instruction and returns its result; an error fails it
// (its text is the instruction's error). ctx ends when the instruction is
// no longer the agent's (cancelled by the node, lease lost) or the agent
// stops.
type Handler func(ctx context.Context, in table.Instruction) ([]byte, error)

// Config configures an agent.
type Config struct {
	// Host is the host's name: the agent takes instructions targeted at it
	// or at any host, and reports its status under it. Required.
	Host string
	// ID names this agent instance as the taker of instructions. Default
	// host/pid-random, so two agents started with one Host are told apart.
	ID string
	// Handlers run the task types the agent serves. At least one.
	Handlers map[string]Handler
	// Slots is how many instructions run at once. Default 4.
	Slots int
	// Poll is how often the agent looks for new instructions when no
	// notification wakes it (PostgreSQL LISTEN/NOTIFY). Default 1 s.
	Poll time.Duration
	// Lease is how long a taken instruction stays the agent's without a
	// renewal: after it, the node fails the instruction and retries the
	// task. Default 15 s.
	Lease time.Duration
	// RenewEvery is how often a running instruction's lease is renewed.
	// Default Lease/3.
	RenewEvery time.Duration
	// StatusEvery is how often the host's resources are written to the
	// node-status table. Default 10 s.
	StatusEvery time.Duration
	// DiskPath is the file system whose use is reported. Default "/".
	DiskPath string
	// WriteTimeout bounds writing a result or a status. Default 10 s.
	WriteTimeout time.Duration
	// TakeGap is the least time between two takes: wake-ups come with every
	// write to the table, and a take is a write; those within TakeGap of a
	// take are served by the next one, which then takes more at once.
	// Default 2 ms (at most Poll); 0: none.
	TakeGap time.Duration
}

// DefaultConfig returns the defaults for host.
func DefaultConfig(host string) Config {
	return Config{Host: host, Handlers: map[string]Handler{}, Slots: 4, Poll: time.Second, Lease: 15 * time.Second,
		RenewEvery: 5 * time.Second, StatusEvery: 10 * time.Second, DiskPath: "/", WriteTimeout: 10 * time.Second,
		TakeGap: 2 * time.Millisecond}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("agent: Config.Host is empty: name the host")
	case len(c.Handlers) == 0:
		return errors.New("agent: Config.Handlers is empty: the agent serves no task type")
	case c.Slots < 1:
		return fmt.Errorf("agent: Config.Slots must be >= 1 (default 4), got %d", c.Slots)
	case c.Poll <= 0:
		return fmt.Errorf("agent: Config.Poll must be > 0 (default 1s), got %v", c.Poll)
	case c.Lease <= 0:
		return fmt.Errorf("agent: Config.Lease must be > 0 (default 15s), got %v", c.Lease)
	case c.RenewEvery <= 0 || c.RenewEvery >= c.Lease:
		return fmt.Errorf("agent: Config.RenewEvery must be > 0 and < Lease (%v) (default Lease/3), got %v", c.Lease, c.RenewEvery)
	case c.StatusEvery <= 0:
		return fmt.Errorf("agent: Config.StatusEvery must be > 0 (default 10s), got %v", c.StatusEvery)
	case c.TakeGap < 0:
		return fmt.Errorf("agent: Config.TakeGap must be >= 0 (default 2ms), got %v", c.TakeGap)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("agent: Config.WriteTimeout must be > 0 (default 10s), got %v", c.WriteTimeout)
	}
	for t, h := range c.Handlers {
		if t == "" || h == nil {
			return fmt.Errorf("agent: Config.Handlers has an empty type or a nil handler (type %q)", t)
		}
	}
	return nil
}

// Agent takes and runs instructions.
type Agent struct {
	tbl     table.Table
	cfg     Config
	log     *slog.Logger
	types   []string
	running atomic.Int64
	res     *resources
	// results batches the results of instructions finishing together
	// into one statement (group commit).
	results *group.Group[table.Completion, error]
}

// New returns an agent over tbl.
func New(tbl table.Table, cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("%s/%d-%x", cfg.Host, os.Getpid(), time.Now().UnixNano()&0xffffff)
	}
	if cfg.DiskPath == "" {
		cfg.DiskPath = "/"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	types := make([]string, 0, len(cfg.Handlers))
	for t := range cfg.Handlers {
		types = append(types, t)
	}
	slices.Sort(types)
	a := &Agent{tbl: tbl, cfg: cfg, log: log, types: types, res: newResources(cfg.DiskPath)}
	a.results = &group.Group[table.Completion, error]{Max: 1000, Do: a.completeBatch}
	return a, nil
}

// completeBatch writes a batch of results: per result nil, or ErrNotTaken
// when refused.
func (a *Agent) completeBatch(cs []table.Completion) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.WriteTimeout)
	defer cancel()
	return a.tbl.CompleteBatch(ctx, a.cfg.ID, cs)
}

// ID is the agent's taker id.
func (a *Agent) ID() string { return a.cfg.ID }

// Types are the task types it serves.
func (a *Agent) Types() []string { return a.types }

// Run takes and runs instructions until ctx ends. Then it stops the running
// handlers and fails their instructions ("host agent stopping"), so the node
// retries them at once instead of after a lease. It returns an error only
// when the table is closed under it.
func (a *Agent) Run(ctx context.Context) error {
	wake, stop := a.tbl.Subscribe()
	defer stop()
	tick := time.NewTicker(a.cfg.Poll)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	// freed coalesces: a send never blocks (a full buffer of finished
	// instructions, the loop busy elsewhere, would otherwise hold their
	// goroutines and slots).
	freed := make(chan struct{}, 1)
	wg.Go(func() { a.reportLoop(ctx) })
	var took time.Time
	for {
		free := a.cfg.Slots - int(a.running.Load())
		if free > 0 {
			if wait := min(a.cfg.TakeGap, a.cfg.Poll) - time.Since(took); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
				free = a.cfg.Slots - int(a.running.Load())
			}
			took = time.Now()
			ins, err := a.tbl.Take(ctx, table.TakeRequest{Host: a.cfg.Host, Taker: a.cfg.ID, Types: a.types, Lease: a.cfg.Lease, Max: free})
			switch {
			case errors.Is(err, table.ErrClosed):
				return err
			case err != nil && ctx.Err() == nil:
				a.log.Warn("take instructions", "err", err)
			}
			for _, in := range ins {
				a.running.Add(1)
				wg.Go(func() {
					defer func() {
						a.running.Add(-1)
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					a.run(ctx, in)
				})
			}
			if len(ins) > 0 && len(ins) < free {
				continue // there may be more, and slots for them
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-wake:
		case <-freed:
		}
	}
}

// run runs one taken instruction: the handler, renewing the lease beside
// it, then the result. A renewal refused (the node cancelled it, or the
// lease already expired and the node failed it) stops the handler and
// writes nothing: the instruction is no longer the agent's.
func (a *Agent) run(ctx context.Context, in table.Instruction) {
	log := a.log.With("instruction", in.ID, "task_id", in.TaskID, "attempt", in.Attempt, "type", in.Type)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost atomic.Bool
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(a.cfg.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			err := a.tbl.Renew(hctx, in.ID, a.cfg.ID, a.cfg.Lease)
			if errors.Is(err, table.ErrNotTaken) {
				log.Info("instruction no longer ours (cancelled by the node, or our lease expired): stopping it")
				lost.Store(true)
				cancel()
				return
			}
			if err != nil && hctx.Err() == nil {
				log.Warn("renew lease", "err", err) // the next tick tries again
			}
		}
	}()
	out, err := a.safeRun(hctx, in)
	cancel()
	<-renewDone
	if lost.Load() {
		return
	}
	failure := ""
	if err != nil {
		failure = err.Error()
		if ctx.Err() != nil {
			failure = "host agent " + a.cfg.ID + " stopping: " + failure
		}
		if failure == "" {
			failure = "failed"
		}
	}
	refused, err := a.results.Call(table.Completion{ID: in.ID, Result: out, Failure: failure})
	if err == nil {
		err = refused
	}
	if errors.Is(err, table.ErrNotTaken) {
		log.Info("result refused: the instruction is no longer ours")
	} else if err != nil {
		log.Warn("write result", "err", err) // the lease expires and the node retries
	}
}

// safeRun runs the handler, turning a panic into a failure.
func (a *Agent) safeRun(ctx context.Context, in table.Instruction) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return a.cfg.Handlers[in.Type](ctx, in)
}

// reportLoop writes the host's status at once and every StatusEvery.
func (a *Agent) reportLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatusEvery)
	defer t.Stop()
	for {
		a.Report(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Report writes the host's status now.
func (a *Agent) Report(ctx context.Context) {
	s := a.res.sample()
	s.Host, s.Agent, s.Types, s.Running = a.cfg.Host, a.cfg.ID, a.types, int(a.running.Load())
	wctx, cancel := context.WithTimeout(ctx, a.cfg.WriteTimeout)
	defer cancel()
	if err := a.tbl.PutStatus(wctx, s); err != nil && ctx.Err() == nil {
		a.log.Warn("report host status", "err", err)
	}
}
