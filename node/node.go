// Package node wires one shoal node: the task store and the intake, queue
// (pump, dedupe and dispatch stepped in one actor), result-hub, flow,
// supervisor and cloud actors, reachable in-process and, with a codec, over
// protoactor remote.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/shoalrt/shoal/actors/cloud"
	"github.com/shoalrt/shoal/actors/flow"
	"github.com/shoalrt/shoal/actors/queue"
	"github.com/shoalrt/shoal/actors/queue/dedupe"
	"github.com/shoalrt/shoal/actors/queue/dispatch"
	"github.com/shoalrt/shoal/actors/queue/pump"
	"github.com/shoalrt/shoal/actors/request"
	"github.com/shoalrt/shoal/actors/results"
	"github.com/shoalrt/shoal/actors/supervisor"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/cluster/steal"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/internal/mailbox"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/servers"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// The node's actor names (see messages.Actor*).
const (
	NameIntake   = messages.ActorIntake
	NameResults  = messages.ActorResults
	NameDedupe   = messages.ActorDedupe
	NameDispatch = messages.ActorDispatch
	NameStatus   = messages.ActorStatus
)

// Config configures a node.
type Config struct {
	// Name identifies the node in status output. Default "node-1".
	Name string
	// DataDir is the Pebble store's directory. Required unless Store is set.
	DataDir string
	// Pebble tunes the Pebble store in DataDir (memtable size, L0
	// thresholds, group commit size; units and defaults in
	// store.PebbleOptions). Ignored when Store is set. Default
	// store.DefaultPebbleOptions().
	Pebble store.PebbleOptions
	// Store, when set, is a postgres:// URL: the node keeps its tasks in
	// that PostgreSQL database (schema "shoal") instead of Pebble in
	// DataDir. Default empty (Pebble). See store.go.
	Store string
	// Token, when set, is required from executors (Register.Token).
	Token string
	// ResultRetention is how long finished tasks and results are kept.
	// Default 24 h. It must be at least the dedupe window.
	ResultRetention time.Duration
	// SweepEvery is how often expired results are deleted. Default 1 min.
	SweepEvery time.Duration

	Intake   request.Config
	Pump     pump.Config
	Dedupe   dedupe.Config
	Dispatch dispatch.Config
	// Queue is the queue actor's timing (its lease tick, result batching
	// and dedupe eviction).
	Queue queue.Timing
	// Results tunes the result hub.
	Results results.Config
	// AdoptEvery is how often a member sharing a PostgreSQL store looks for
	// tasks of departed members to adopt (shared.go). Default 1 s.
	AdoptEvery time.Duration
	// Flows configures the flow runner (docs/flows.md).
	Flows flow.Config
	// Supervisor configures the server supervisor (docs/supervision.md).
	Supervisor supervisor.Config
	// Executors is how many executor processes Launcher starts (ids
	// LaunchedID); the supervisor restarts them. Default 0.
	Executors int
	// Launcher starts executor processes (nil: none; supervisor.Command).
	Launcher supervisor.Launcher
	// AlertSinks receive the supervisor's alerts besides the log.
	AlertSinks []supervisor.Sink

	// Cloud tunes the cloud actor; CloudProvider, when set, turns cloud
	// spill on (actors/cloud, cloud.go). Nil: off.
	Cloud         cloud.Config
	CloudProvider cloud.Provider

	// Members, when set, lists the cluster members for status.
	Members func() []messages.MemberStatus
	// Cluster, when set, makes the node a cluster member routing by its
	// directory (see cluster.go); it needs remote (a codec). Nil: a single
	// node, exactly as before.
	Cluster *route.Directory
	// StealFrom, when set on a cluster member, lists the peers with their
	// gossiped queue depths, and the node steals work from loaded peers
	// when it is idle (cluster/steal, tuned by Steal). Nil: no stealing.
	StealFrom func() []steal.Peer
	Steal     steal.Config

	// Hosts turns on the bridge to host agents (hosts.go). Zero: off.
	Hosts HostsConfig
	// Servers bounds the servers view's history (servers.go,
	// docs/servers.md). Zero: servers.DefaultConfig().
	Servers servers.Config

	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the documented defaults for a node storing in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Name:            "node-1",
		DataDir:         dir,
		Pebble:          store.DefaultPebbleOptions(),
		ResultRetention: 24 * time.Hour,
		SweepEvery:      time.Minute,
		Intake:          request.DefaultConfig(),
		Pump:            pump.DefaultConfig(),
		Dedupe:          dedupe.DefaultConfig(),
		Dispatch:        dispatch.DefaultConfig(),
		Queue:           queue.DefaultTiming(),
		Results:         results.DefaultConfig(),
		AdoptEvery:      time.Second,
		Steal:           steal.DefaultConfig(),
		Flows:           flow.DefaultConfig(),
		Cloud:           cloud.DefaultConfig(),
		Supervisor:      supervisor.DefaultConfig(),
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "" && c.Store == "":
		return errors.New("node: DataDir (Pebble) or Store (postgres:// URL) must be set")
	case c.Store != "" && !store.IsPostgresURL(c.Store):
		return errors.New("node: Store must be a postgres:// or postgresql:// URL (empty: Pebble in DataDir)")
	case c.ResultRetention < c.Dedupe.MaxWindow():
		return fmt.Errorf("node: ResultRetention (%v) must be >= the longest dedupe window (%v)", c.ResultRetention, c.Dedupe.MaxWindow())
	case c.SweepEvery <= 0:
		return fmt.Errorf("node: SweepEvery must be > 0, got %v", c.SweepEvery)
	case c.Executors < 0 || c.Executors > 0 && c.Launcher == nil:
		return fmt.Errorf("node: Executors (%d) needs a Launcher and must be >= 0", c.Executors)
	case c.AdoptEvery <= 0:
		return fmt.Errorf("node: AdoptEvery must be > 0, got %v", c.AdoptEvery)
	case c.Store == "":
		if err := c.Pebble.Validate(); err != nil {
			return fmt.Errorf("node: Pebble: %w", err)
		}
	}
	return errors.Join(c.Intake.Validate(), c.Pump.Validate(), c.Dedupe.Validate(), c.Dispatch.Validate(), c.Queue.Validate(), c.Results.Validate(),
		c.Steal.Validate(), c.Flows.Validate(), c.Supervisor.Validate(), c.Cloud.Validate(), c.Hosts.Validate())
}

// PIDs are the node's addressable actors.
type PIDs struct {
	Intake, Results, Dedupe, Dispatch, Status *actor.PID
	Flows                                     *actor.PID
}

// Node is a running shoal node.
type Node struct {
	cfg      Config
	system   *actor.ActorSystem
	store    store.Store
	pids     PIDs
	stopOnce sync.Once
	stopped  chan struct{}
	sweeper  sync.WaitGroup
	opts     []actor.PropsOption // codec middlewares when remote; the mailbox pool
	pool     *mailbox.Pool       // runs the node's mailboxes (internal/mailbox)
	codec    *cluster.Codec
	// routerPIDs are the cluster routers (nil entries on a single node).
	routerPIDs [3]*actor.PID
	flows      flowParts
	// endpointSub evicts executors whose connection is lost (supervision.go).
	endpointSub *eventstream.Subscription
	hosts       *hostsPart // the host bridge (hosts.go); nil: off
	// startLog records attempt starts (Pebble nodes; nil on PostgreSQL).
	startLog *store.StartLog
}

// Start opens the store, recovers, and spawns the node's actors on system.
// With a codec (system already started with cluster.StartRemote) the actors
// accept and answer clients and executors in other processes; with nil they
// serve this process only.
func Start(ctx context.Context, cfg Config, system *actor.ActorSystem, codec *cluster.Codec) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	if cfg.Cluster != nil && codec == nil {
		st.Close()
		return nil, errors.New("node: a cluster member needs remote (a codec)")
	}
	n := &Node{cfg: cfg, system: system, store: st, stopped: make(chan struct{}), codec: codec}
	var transport actorio.Transport = actorio.Local{}
	if codec != nil {
		transport = codec
		n.opts = codec.PropsOptions(cfg.Logger)
	}
	n.pool = mailbox.NewPool(0, 0)
	n.opts = append(n.opts, actor.WithDispatcher(n.pool))
	if err := n.spawn(ctx, transport); err != nil {
		n.pool.Close()
		st.Close()
		return nil, err
	}
	n.sweeper.Add(1)
	go n.sweep()
	n.startAdopter()
	if err := n.startHosts(ctx); err != nil {
		_ = n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) spawn(ctx context.Context, tr actorio.Transport) error {
	cfg, log, now := n.cfg, n.cfg.Logger, n.cfg.Now
	maxID, err := n.store.MaxID(ctx)
	if err == nil {
		maxID, err = n.ownMaxID(ctx, maxID) // shared.go
	}
	if err != nil {
		return fmt.Errorf("node: read id high-water mark: %w", err)
	}
	var seed []task.Result
	since := now().Add(-cfg.Dedupe.MaxWindow())
	if err := n.store.Results(ctx, since, func(r task.Result) error {
		seed = append(seed, r)
		return nil
	}); err != nil {
		return fmt.Errorf("node: read results for the dedupe window: %w", err)
	}
	if maxID, err = n.firstID(maxID); err != nil {
		return err
	}
	paused, err := n.store.Paused(ctx)
	if err != nil {
		return fmt.Errorf("node: read the paused set: %w", err)
	}
	if err := n.openStartLog(ctx); err != nil { // store.go
		return err
	}
	var starts queue.StartRecorder
	if n.startLog != nil {
		starts = n.startLog
	}
	log.Info("node recovering", "max_id", maxID, "dedupe_seed", len(seed))

	addr := n.system.Address()
	pid := func(name string) *actor.PID { return actor.NewPID(addr, name) }
	n.pids = PIDs{Intake: pid(NameIntake), Results: pid(NameResults), Dedupe: pid(NameDedupe), Dispatch: pid(NameDispatch), Status: pid(NameStatus), Flows: pid(NameFlows)}
	n.ownNames()
	p := n.pids
	root := n.system.Root

	spawn := func(props *actor.Props, name string) error {
		_, err := root.SpawnNamed(props.Configure(n.opts...), name)
		if err != nil {
			return fmt.Errorf("node: spawn %s: %w", name, err)
		}
		return nil
	}
	var auth func(string) bool
	if cfg.Token != "" {
		auth = func(tok string) bool { return tok == cfg.Token }
	}
	flows := n.spawnFlows(tr, spawn) // first: the queue hands it flow tasks as soon as it runs
	return errors.Join(flows,
		spawn(results.Props(cfg.Results, results.Deps{Store: n.store, Transport: tr, Logger: log, Now: now, Queue: p.Dispatch, Flows: p.Flows}), p.Results.Id),
		// Intake before the queue: the queue tells it the standby count as it
		// starts, and protoactor races a send with a spawn still under way.
		spawn(request.Props(cfg.Intake, maxID, request.Deps{Store: n.store, Queue: p.Dispatch, Transport: tr, Logger: log, Now: now}), p.Intake.Id),
		spawn(queue.Props(queue.Config{Pump: cfg.Pump, Dedupe: cfg.Dedupe, Dispatch: cfg.Dispatch, Timing: cfg.Queue},
			queue.Deps{Store: n.pumpStore(), Intake: p.Intake, Results: p.Results, Flows: p.Flows, Stealer: n.stealerPID(),
				Transport: tr, Logger: log, Now: now, Authorize: auth, MaxID: maxID, Seed: seed, Paused: paused, Starts: starts}), NameDispatch),
		n.alias(p.Dispatch, p.Dedupe), // clients cancel at the dedupe's name
		spawn(actor.PropsFromFunc(n.statusActor(tr)), NameStatus),
		n.spawnRouters(spawn),
		n.spawnStealer(spawn),
		n.spawnCloud(spawn),
		n.spawnSupervisor(spawn), // after the dispatcher: it watches it
		// Last: its first gathering asks every other actor at once, and
		// protoactor races a send with a spawn still under way.
		n.spawnServers(tr, spawn),
	)
}

// alias makes the actor at pid answer under as's name too.
func (n *Node) alias(pid, as *actor.PID) error {
	proc, ok := n.system.ProcessRegistry.Get(pid)
	if !ok {
		return fmt.Errorf("node: alias %s: no actor %s", as.Id, pid.Id)
	}
	if _, ok := n.system.ProcessRegistry.Add(proc, as.Id); !ok {
		return fmt.Errorf("node: alias %s: %w", as.Id, actor.ErrNameExists)
	}
	return nil
}

// Counters gathers the node's cumulative counts from the actors that own
// them: intake, the result hub, the queue and, when stealing, the stealer.
func (n *Node) Counters(ctx context.Context) (task.Counters, error) {
	pids := []*actor.PID{n.pids.Intake, n.pids.Results, n.pids.Dispatch}
	if p := n.stealerPID(); p != nil {
		pids = append(pids, p)
	}
	futures := make([]*actor.Future, len(pids))
	for i, p := range pids {
		futures[i] = n.system.Root.RequestFuture(p, task.CountersRequest{}, timeoutOf(ctx))
	}
	var c task.Counters
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			return task.Counters{}, fmt.Errorf("node: counters of %s: %w", pids[i].Id, err)
		}
		c.Add(res.(task.Counters))
	}
	return c, nil
}

// AwaitFinished returns once at least n tasks have a durable terminal
// result since the node started, or when ctx ends (without polling: the
// result hub answers when its count reaches n).
func (n *Node) AwaitFinished(ctx context.Context, atLeast int64) (task.Counters, error) {
	for {
		step := time.Minute // a context without deadline waits in steps
		if d, ok := ctx.Deadline(); ok {
			step = max(time.Until(d), time.Millisecond)
		}
		res, err := n.system.Root.RequestFuture(n.pids.Results, task.FinishedRequest{AtLeast: atLeast}, step).Result()
		switch {
		case err == nil:
			return res.(task.Counters), nil
		case ctx.Err() != nil:
			return task.Counters{}, ctx.Err()
		case !errors.Is(err, actor.ErrTimeout):
			return task.Counters{}, fmt.Errorf("node: await %d finished: %w", atLeast, err)
		}
	}
}

func (n *Node) sweep() {
	defer n.sweeper.Done()
	t := time.NewTicker(n.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stopped:
			return
		case <-t.C:
		}
		cutoff := n.cfg.Now().Add(-n.cfg.ResultRetention)
		for {
			k, err := n.store.Sweep(context.Background(), cutoff, 10_000)
			if err != nil {
				n.cfg.Logger.Error("result sweep failed", "err", err)
				break
			}
			if k < 10_000 {
				break
			}
		}
	}
}

// System is the node's actor system.
func (n *Node) System() *actor.ActorSystem { return n.system }

// PIDs returns the node's addressable actors.
func (n *Node) PIDs() PIDs { return n.pids }

// Store is the node's task store (read-only use: tests and tools).
func (n *Node) Store() store.Store { return n.store }

// Status gathers the node's queues, executors and counters.
func (n *Node) Status(ctx context.Context) (*messages.Status, error) {
	res, err := n.system.Root.RequestFuture(n.pids.Dispatch, task.SnapshotRequest{}, timeoutOf(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("node: status: %w", err)
	}
	snap := res.(task.Snapshot)
	c, err := n.Counters(ctx)
	if err != nil {
		return nil, fmt.Errorf("node: status: %w", err)
	}
	st := &messages.Status{Node: n.cfg.Name, Executors: snap.Executors, Counters: map[string]int64{
		"accepted":     c.Accepted,
		"done":         c.Done,
		"dead":         c.Dead,
		"cancelled":    c.Cancelled,
		"deduplicated": c.Deduplicated,
		"standby":      c.Standby,
		"leased":       int64(snap.Leases),
		"granted":      snap.Counters.Granted,
		"retried":      snap.Counters.Retried,
		"expired":      snap.Counters.Expired,
		"stale":        snap.Counters.Stale,
		"stolen":       c.Stolen,
		"evicted":      snap.Counters.Evicted,
		"slept":        snap.Counters.Slept,
		"woken":        snap.Counters.Woken,
		"timed_out":    snap.Counters.TimedOut,
	}}
	st.PausedTypes, st.PausedClasses = snap.Paused.Types, snap.Paused.ClassNames()
	for _, u := range snap.Unplaceable {
		st.Counters["unplaceable"] += int64(u.Tasks)
		st.Unplaceable = append(st.Unplaceable, messages.UnplaceableStatus{Type: u.Type, Requirements: u.Shape, Tasks: int64(u.Tasks), SinceUnixMs: u.Since / 1e6,
			Refused: u.Refused.String()})
	}
	for i := range snap.Queued {
		st.Classes = append(st.Classes, messages.ClassStatus{Class: messages.Class(i).String(),
			Queued: int64(snap.Queued[i]), Standby: c.ClassStandby[i], Paused: snap.Paused.Class(messages.Class(i))})
	}
	n.flowCounters(ctx, st.Counters)
	n.supervision(ctx, st) // supervision.go
	n.addCloudStatus(ctx, st)
	if n.cfg.Members != nil {
		st.Members = n.cfg.Members()
		st.DigestFields = n.cfg.Intake.DigestFields
	}
	return st, nil
}

// Pause holds task types and priority classes back from dispatch (resume
// false) or lets them go again (resume true), and returns the paused set
// after the change once it is durable (messages.Pause).
func (n *Node) Pause(ctx context.Context, p *messages.Pause) (*messages.PauseAck, error) {
	res, err := n.system.Root.RequestFuture(n.pids.Dispatch, p, timeoutOf(ctx)).Result()
	if err != nil {
		return nil, fmt.Errorf("node: pause: %w", err)
	}
	ack, ok := res.(*messages.PauseAck)
	if !ok {
		return nil, fmt.Errorf("node: pause: unexpected answer %T", res)
	}
	if ack.Err != nil {
		return ack, ack.Err
	}
	return ack, nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 5 * time.Second
}

// statusActor answers StatusRequest from remote clients.
func (n *Node) statusActor(tr actorio.Transport) actor.ReceiveFunc {
	return func(c actor.Context) {
		if _, ok := c.Message().(*messages.StatusRequest); !ok || c.Sender() == nil {
			return
		}
		sender := c.Sender()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := n.Status(ctx)
			if err != nil {
				st = &messages.Status{Node: n.cfg.Name}
			}
			tr.Send(n.system.Root, sender, st)
		}()
	}
}

// Stop stops the node's actors and closes the store. Acknowledged work that
// has not finished stays in the store and is requeued at the next start,
// its running attempts not counted (node/store.go, openStartLog).
func (n *Node) Stop() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stopped)
		n.stopHosts()
		n.sweeper.Wait()
		if n.endpointSub != nil {
			n.system.EventStream.Unsubscribe(n.endpointSub)
		}
		root := n.system.Root
		for _, p := range []*actor.PID{n.serversPID(), n.cloudPID(), n.supervisorPID(), n.stealerPID(), n.routerPIDs[0], n.routerPIDs[1], n.routerPIDs[2], n.pids.Flows, n.pids.Intake, n.pids.Dispatch, n.pids.Results, n.pids.Status} {
			if p != nil {
				_ = root.StopFuture(p).Wait()
			}
		}
		n.system.ProcessRegistry.Remove(n.pids.Dedupe) // the queue's alias
		if n.startLog != nil {
			// A graceful stop does not count the attempts still running:
			// remote executors and host agents may finish them, and the
			// next start grants them again under the same attempt, which
			// the host bridge relies on to find its instruction. Only a
			// death (kill, crash) leaves the starts for recovery.
			err = errors.Join(n.startLog.Reset(), n.startLog.Close())
		}
		err = errors.Join(err, n.store.Close())
		n.pool.Close()
	})
	return err
}
