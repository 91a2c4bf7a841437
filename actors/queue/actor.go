// Package queue is the node's task queue: one actor that steps three pure
// machines by function calls — the compensation pump (pump), duplicate
// removal (dedupe) and the dispatcher (dispatch) — and splits flow tasks off
// to the flow runner between dedupe and the dispatcher.
//
// The three machines share no real concurrency boundary: every task passes
// through all of them in order, and each step's effects feed the next. So
// they live in one mailbox, and a task goes from intake's commit to an
// executor's grant without crossing another actor. The queue answers under
// three names: the dispatcher's (executors register and pull there), the
// dedupe's (clients cancel there) and its own.
//
// Everything that blocks stays out of Receive: standby refills, result
// commits, attempt commits and the store reads of a cancel run on their own
// goroutines and answer with a message.
package queue

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// Timing are the queue's timers and its result batching.
type Timing struct {
	// TickEvery is how often leases and retries are checked. Default 100 ms.
	TickEvery time.Duration
	// FlushDelay batches result writes: results wait up to this long (or
	// until FlushMax are pending) before one commit makes them durable.
	// Each fsync costs CPU on small machines; a few milliseconds of result
	// latency buys far fewer of them when tasks finish one by one. Results
	// are announced to waiters only once durable. Default 2 ms.
	FlushDelay time.Duration
	// FlushMax flushes at once when this many results wait. Default 2,048.
	FlushMax int
	// EvictEvery is how often dedupe forgets finished groups past their
	// window. Default 1 s.
	EvictEvery time.Duration
}

// DefaultTiming returns the documented defaults.
func DefaultTiming() Timing {
	return Timing{TickEvery: 100 * time.Millisecond, FlushDelay: 2 * time.Millisecond, FlushMax: 2048, EvictEvery: time.Second}
}

// Validate names the first bad field.
func (t Timing) Validate() error {
	switch {
	case t.TickEvery <= 0:
		return fmt.Errorf("queue: TickEvery must be > 0, got %v", t.TickEvery)
	case t.FlushDelay < 0:
		return fmt.Errorf("queue: FlushDelay must be >= 0, got %v", t.FlushDelay)
	case t.FlushMax <= 0:
		return fmt.Errorf("queue: FlushMax must be > 0, got %d", t.FlushMax)
	case t.EvictEvery <= 0:
		return fmt.Errorf("queue: EvictEvery must be > 0, got %v", t.EvictEvery)
	}
	return nil
}

// Config configures the queue: its three machines and its timing.
type Config struct {
	Pump     pump.Config
	Dedupe   dedupe.Config
	Dispatch dispatch.Config
	Timing
}

// Deps are the queue's collaborators.
type Deps struct {
	Store store.Store
	// Intake is told task.Waiting for its admission control.
	Intake *actor.PID
	// Results is told task.Completed once results are durable.
	Results *actor.PID
	// Flows, when set, runs flow tasks (task.Enqueue, task.CancelQueued).
	Flows *actor.PID
	// Stealer, when set, receives the results of stolen tasks
	// (task.StolenResults).
	Stealer   *actor.PID
	Transport actorio.Transport
	Logger    *slog.Logger
	Now       func() time.Time
	// Authorize checks an executor's token; nil accepts every executor.
	Authorize func(token string) bool
	// MaxID is the store's id high-water mark (the pump's cursor).
	MaxID uint64
	// Seed lists results within the dedupe window found at start-up.
	Seed []task.Result
	// Paused is the paused set found in the store at start-up (pause.go).
	Paused task.Paused
	// Starts, when set, records every attempt's start before its grant
	// goes out (the node's store.StartLog); nil: the starts are committed
	// to Store with the next results, and grants wait for that sync
	// (grants.go).
	Starts StartRecorder
}

// Timer messages, one per timer.
type (
	pumpTick     struct{}
	dispatchTick struct{}
	evictTick    struct{}
	flushResults struct{}
	waitingTick  struct{}
	// takeIn asks the queue to take in the next chunk of its inbox.
	takeIn struct{}
)

// inboxChunk is how many persisted tasks one turn takes in: a batch is
// taken in over several turns, so an executor's Pull or a result never
// waits behind a whole batch going through dedupe, and parked executors get
// the first tasks of a batch while the rest is still coming (the chunks
// keep their order: the pump relies on it). Measured in W1 concurrent
// (round robin, 4 rounds): 16 tasks gave ~1.3× the throughput of 256 at
// 0.92–0.95× the CPU per task; 4 and 8 were no better.
const inboxChunk = 16

// loaded is a standby refill read off the actor.
type loaded struct {
	class     messages.Class
	tasks     []task.Record
	exhausted bool
	err       error
}

// persisted is a result commit's outcome.
type persisted struct {
	recs   []task.Result
	held   *heldGrants // grants waiting for this commit's attempt starts
	starts int
	err    error
}

type shell struct {
	pump   *pump.Machine
	dedupe *dedupe.Machine
	disp   *dispatch.Machine
	cfg    Config
	d      Deps
	pids   map[string]*actor.PID // executor id → reply address

	pumpTimer, dispatchTimer, evictTimer, flushTimer, waitingTimer actorio.Timer

	inbox   [][]task.Record          // persisted batches not taken in yet, in commit order
	taking  bool                     // a takeIn is in the mailbox
	pending []task.Result            // results waiting for the next flush
	credit  [messages.NumClasses]int // queue places freed, for the pump
	// Grants waiting for their attempt counts, in order (grants.go);
	// startsHeld gathers those whose starts are in starts, for the next
	// result commit.
	held       []*heldGrants
	startsHeld *heldGrants
	starts     []store.AttemptUpdate

	placed, told, peak int64 // persisted tasks taken in; what intake was told
	toldStandby        int64

	self   *actor.PID
	system *actor.ActorSystem
}

// Props returns the queue actor.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		dd := dedupe.New(cfg.Dedupe)
		for _, r := range d.Seed {
			dd.Seed(r)
		}
		d.Seed = nil
		disp := dispatch.New(cfg.Dispatch)
		disp.SetPaused(d.Now(), d.Paused) // nothing queued yet: no effects
		return &shell{
			pump: pump.New(cfg.Pump, cfg.Dispatch.Capacity, d.MaxID), dedupe: dd, disp: disp,
			cfg: cfg, d: d, pids: map[string]*actor.PID{}, told: -1, toldStandby: -1,
		}
	})
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.system = ctx.Self(), ctx.ActorSystem()
		s.dispatchTimer.Arm(s.system, s.self, s.cfg.TickEvery, dispatchTick{})
		s.evictTimer.Arm(s.system, s.self, s.cfg.EvictEvery, evictTick{})
		s.pumped(now, s.pump.Start(now))

	// The pump's side.
	case task.Persisted:
		if len(msg.Tasks) > 0 {
			s.inbox = append(s.inbox, msg.Tasks)
			s.takeIn(ctx, now)
		}
	case takeIn:
		s.taking = false
		s.takeIn(ctx, now)
	case task.Credit:
		for c, n := range msg.N {
			s.credit[c] += n
		}
	case pumpTick:
		s.pumpTimer.Clear()
		s.pumped(now, s.pump.Tick(now))
	case loaded:
		if msg.err != nil {
			s.d.Logger.Error("standby refill failed", "class", msg.class.String(), "err", msg.err)
			msg.tasks, msg.exhausted = nil, false // retried on the next tick
		}
		s.pumped(now, s.pump.Loaded(now, msg.class, msg.tasks, msg.exhausted))

	// Dedupe's side.
	case task.Finished:
		s.deduped(now, s.dedupe.Finished(now, msg.Results))
	case *messages.Cancel:
		s.cancel(ctx, now, msg)
	case cancelLooked:
		s.cancelled(now, msg)
	case persisted:
		if msg.held != nil {
			s.released(msg.held, msg.starts, msg.err) // grants.go
		}
		if len(msg.recs) == 0 {
			break
		}
		if msg.err != nil {
			// The results stay pending in the store: after a restart the
			// tasks run again (at least once). Nothing is acknowledged as done.
			s.d.Logger.Error("result commit failed", "results", len(msg.recs), "err", msg.err)
			break
		}
		if s.d.Starts != nil {
			s.d.Starts.Done(resultIDs(msg.recs))
		}
		ctx.Send(s.d.Results, task.Completed{Results: msg.recs})
	case flushResults:
		s.flushTimer.Clear()
		s.flushPending()
	case waitingTick:
		s.waitingTimer.Clear()
	case evictTick:
		s.dedupe.Tick(now)
		s.evictTimer.Arm(s.system, s.self, s.cfg.EvictEvery, evictTick{})

	// The dispatcher's side.
	case task.EnqueueStolen:
		s.dispatched(ctx, now, s.disp.EnqueueStolen(now, msg.Tasks))
	case task.CancelQueued:
		s.dispatched(ctx, now, s.disp.Cancel(now, msg.IDs))
	case *messages.Register:
		s.register(ctx, now, msg)
	case *messages.Pull:
		s.learn(ctx, msg.ExecutorID)
		s.dispatched(ctx, now, s.disp.Pull(now, msg))
	case *messages.Heartbeat:
		s.learn(ctx, msg.ExecutorID)
		s.dispatched(ctx, now, s.disp.Heartbeat(now, msg))
	case task.Evict:
		s.evict(ctx, now, msg.Executor, msg.Reason)
	case task.EvictAddress:
		var ids []string
		for id, p := range s.pids {
			if p.Address == msg.Address {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			s.evict(ctx, now, id, msg.Reason)
		}
	case task.SetState:
		fx, err := s.disp.SetState(now, msg.Executor, msg.State)
		s.dispatched(ctx, now, fx)
		if err == nil {
			s.d.Logger.Info("executor state", "executor", msg.Executor, "state", msg.State)
		}
		if ctx.Sender() != nil {
			ctx.Respond(task.StateResult{Err: err})
		}
	case *messages.Drain:
		s.drain(ctx, now, msg)
	case *messages.Pause:
		s.pause(ctx, now, msg) // pause.go
	case dispatchTick:
		s.dispatched(ctx, now, s.disp.Tick(now))
		for id := range s.pids {
			if !s.disp.Known(id) {
				delete(s.pids, id)
			}
		}
		s.dispatchTimer.Arm(s.system, s.self, s.cfg.TickEvery, dispatchTick{})

	// Questions.
	case task.SnapshotRequest:
		ctx.Respond(s.snapshot())
	case task.LocateRequest:
		ctx.Respond(s.locate(msg.IDs))
	case task.CountersRequest:
		c := task.Counters{Standby: s.pump.Standby(), StandbyPeak: s.peak}
		for i := range c.ClassStandby {
			c.ClassStandby[i] = s.pump.ClassStandby(messages.Class(i))
		}
		ctx.Respond(c)

	case *actor.Stopping:
		s.pumpTimer.Stop()
		s.dispatchTimer.Stop()
		s.evictTimer.Stop()
		s.flushTimer.Stop()
		s.waitingTimer.Stop()
		s.flushPending()
		return
	}
	s.settle(now)
	s.tellWaiting(ctx)
}

// takeIn hands the pump the next chunk of the inbox, and asks for another
// turn while some is left.
func (s *shell) takeIn(ctx actor.Context, now time.Time) {
	if len(s.inbox) == 0 {
		return
	}
	head := s.inbox[0]
	chunk := head[:min(len(head), inboxChunk)]
	if rest := head[len(chunk):]; len(rest) > 0 {
		s.inbox[0] = rest
	} else {
		s.inbox[0] = nil
		s.inbox = s.inbox[1:]
	}
	s.placed += int64(len(chunk))
	s.pumped(now, s.pump.Persisted(now, chunk))
	if len(s.inbox) > 0 && !s.taking {
		s.taking = true
		ctx.Send(s.self, takeIn{})
	}
}

// pumped applies the pump's effects: forwarded tasks go through dedupe now.
func (s *shell) pumped(now time.Time, fx pump.Effects) {
	if len(fx.Forward) > 0 {
		s.deduped(now, s.dedupe.Tasks(now, fx.Forward))
	}
	for _, l := range fx.Loads {
		go s.load(l)
	}
	if fx.Tick > 0 {
		s.pumpTimer.Arm(s.system, s.self, fx.Tick, pumpTick{})
	}
}

// deduped applies dedupe's effects: originals go to the dispatcher, flow
// tasks to the flow runner; freed places wait in s.credit for settle.
func (s *shell) deduped(now time.Time, fx dedupe.Effects) {
	if len(fx.Dispatch) > 0 {
		work, flows := splitFlows(fx.Dispatch)
		if len(flows) > 0 {
			s.toFlows(task.Enqueue{Tasks: flows})
		}
		if len(work) > 0 {
			s.dispatched(nil, now, s.disp.Enqueue(now, work))
		}
	}
	s.addCredit(fx.Credit)
	if len(fx.Cancel) > 0 {
		s.dispatched(nil, now, s.disp.Cancel(now, fx.Cancel))
		s.toFlows(task.CancelQueued{IDs: fx.Cancel})
	}
	if len(fx.Persist) > 0 {
		s.pending = append(s.pending, fx.Persist...)
		s.scheduleFlush()
	}
}

// scheduleFlush commits the pending results and attempt starts at once
// when FlushMax of them wait, else within FlushDelay.
func (s *shell) scheduleFlush() {
	if len(s.pending)+len(s.starts) >= s.cfg.FlushMax {
		s.flushTimer.Stop()
		s.flushPending()
	} else if !s.flushTimer.Armed() {
		s.flushTimer.Arm(s.system, s.self, s.cfg.FlushDelay, flushResults{})
	}
}

// splitFlows separates flow tasks from the rest, keeping order; with none
// (the common case) it returns tasks as they are.
func splitFlows(tasks []task.Record) (work, flows []task.Record) {
	if !slices.ContainsFunc(tasks, func(t task.Record) bool { return t.Type == messages.FlowTaskType }) {
		return tasks, nil
	}
	for _, t := range tasks {
		if t.Type == messages.FlowTaskType {
			flows = append(flows, t)
		} else {
			work = append(work, t)
		}
	}
	return work, flows
}

func (s *shell) toFlows(msg any) {
	if s.d.Flows != nil {
		s.system.Root.Send(s.d.Flows, msg)
	}
}

// dispatched applies the dispatcher's effects. ctx is the message being
// handled when replies without an executor go to its sender (nil: none).
func (s *shell) dispatched(ctx actor.Context, now time.Time, fx dispatch.Effects) {
	var grants []outgoing
	for i := range fx.Grants {
		g := &fx.Grants[i]
		grants = append(grants, outgoing{s.pids[g.Executor], &g.Grant})
	}
	s.sendGrants(grants, fx.Starts) // once the attempts they start are durable (grants.go)
	for _, r := range fx.Replies {
		to := s.pids[r.Executor]
		if to == nil && ctx != nil {
			to = ctx.Sender()
		}
		s.send(to, r.Msg)
	}
	if len(fx.Finished) > 0 {
		s.deduped(now, s.dedupe.Finished(now, fx.Finished))
	}
	if len(fx.Stolen) > 0 && s.d.Stealer != nil {
		s.system.Root.Send(s.d.Stealer, task.StolenResults{Results: fx.Stolen})
	}
	s.addCredit(fx.Credit)
	if len(fx.Attempts) > 0 {
		n, log := len(fx.Attempts), s.d.Logger
		store.Then(s.d.Store, &store.Batch{Attempts: fx.Attempts}, func(err error) {
			if err != nil {
				log.Error("attempt count commit failed", "tasks", n, "err", err)
			}
		})
	}
}

func resultIDs(recs []task.Result) []uint64 {
	ids := make([]uint64, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	return ids
}

func (s *shell) addCredit(c [messages.NumClasses]int) {
	for i, n := range c {
		s.credit[i] += n
	}
}

// settle hands freed queue places to the pump until none is left: what it
// forwards may free more (duplicates absorbed at once), so this loops
// rather than recursing.
func (s *shell) settle(now time.Time) {
	for s.credit != ([messages.NumClasses]int{}) {
		c := s.credit
		s.credit = [messages.NumClasses]int{}
		for cl, n := range c {
			if n > 0 {
				s.pumped(now, s.pump.Credit(now, messages.Class(cl), n))
			}
		}
	}
}

// waitingEvery is the least time between two task.Waiting to intake.
const waitingEvery = time.Millisecond

// tellWaiting keeps intake's admission control current: it is told when
// the standby count or the count of tasks taken in changed, at most once a
// millisecond (a change within it is told when the millisecond is over).
func (s *shell) tellWaiting(ctx actor.Context) {
	standby := s.pump.Standby()
	s.peak = max(s.peak, standby)
	if standby == s.toldStandby && s.placed == s.told || s.waitingTimer.Armed() {
		return
	}
	s.waitingTimer.Arm(s.system, s.self, waitingEvery, waitingTick{})
	s.toldStandby, s.told = standby, s.placed
	if s.d.Intake != nil {
		ctx.Send(s.d.Intake, task.Waiting{Standby: standby, Placed: s.placed})
	}
}

func (s *shell) load(l pump.Load) {
	tasks, err := s.d.Store.Pending(context.Background(), l.Class, l.After, l.Limit)
	s.system.Root.Send(s.self, loaded{class: l.Class, tasks: tasks, exhausted: err == nil && len(tasks) < l.Limit, err: err})
}

func (s *shell) flushPending() {
	if len(s.pending) > 0 || len(s.starts) > 0 {
		s.commit(&store.Batch{Results: s.pending, Starts: s.starts}, s.startsHeld, nil)
		s.pending, s.starts, s.startsHeld = nil, nil, nil
	}
}

// persist commits results; done (optional) runs after the commit.
func (s *shell) persist(recs []task.Result, done func(error)) {
	s.commit(&store.Batch{Results: recs}, nil, done)
}

// commit commits b; its results are announced and held (the grants of
// b.Starts, grants.go) released once it is durable.
func (s *shell) commit(b *store.Batch, held *heldGrants, done func(error)) {
	root, self := s.system.Root, s.self
	store.Then(s.d.Store, b, func(err error) {
		root.Send(self, persisted{recs: b.Results, held: held, starts: len(b.Starts), err: err})
		if done != nil {
			done(err)
		}
	})
}

func (s *shell) register(ctx actor.Context, now time.Time, msg *messages.Register) {
	switch {
	case s.d.Authorize != nil && !s.d.Authorize(msg.Token):
		s.d.Logger.Warn("executor refused: bad token", "executor", msg.ExecutorID)
		s.send(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeUnauthorized, "executor %q: missing or wrong token", msg.ExecutorID)})
	case msg.Version != messages.ProtocolVersion:
		s.send(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", msg.Version, messages.ProtocolVersion)})
	case ctx.Sender() == nil || msg.ExecutorID == "":
		s.send(ctx.Sender(), &messages.Registered{Err: messages.Errorf(messages.CodeInvalid, "register needs an executor id and a sender")})
	default:
		s.pids[msg.ExecutorID] = ctx.Sender()
		s.d.Logger.Info("executor registered", "executor", msg.ExecutorID, "slots", msg.Slots, "types", msg.Types)
		s.dispatched(ctx, now, s.disp.Register(now, msg))
	}
}

func (s *shell) drain(ctx actor.Context, now time.Time, msg *messages.Drain) {
	state := messages.ExecDraining
	if msg.Undo {
		state = messages.ExecActive
	}
	fx, err := s.disp.SetState(now, msg.ExecutorID, state)
	s.dispatched(ctx, now, fx)
	ack := &messages.DrainAck{}
	if err != nil {
		ack.Err = messages.AsError(err)
	} else {
		st, n := s.disp.StateOf(msg.ExecutorID)
		ack.State, ack.Leases = st, int32(n)
		s.d.Logger.Info("executor state", "executor", msg.ExecutorID, "state", st)
	}
	s.send(ctx.Sender(), ack)
}

func (s *shell) evict(ctx actor.Context, now time.Time, id, reason string) {
	// A warning when the executor held work, info when it held none (a
	// drained executor that went away, a released cloud executor).
	if n := s.disp.HeldBy(id); n > 0 {
		s.d.Logger.Warn("executor evicted", "executor", id, "reason", reason, "leases", n)
	} else {
		s.d.Logger.Info("executor evicted", "executor", id, "reason", reason)
	}
	s.dispatched(ctx, now, s.disp.Evict(now, id, reason))
	delete(s.pids, id)
}

// learn keeps the executor's reply address current (it may reconnect).
func (s *shell) learn(ctx actor.Context, id string) {
	if p := ctx.Sender(); p != nil {
		s.pids[id] = p
	}
}

func (s *shell) send(to *actor.PID, msg any) {
	if to != nil {
		s.d.Transport.Send(s.system.Root, to, msg)
	}
}

func (s *shell) snapshot() task.Snapshot {
	var snap task.Snapshot
	for c := range snap.Queued {
		snap.Queued[c] = s.disp.QueueLen(messages.Class(c))
	}
	snap.Leases, snap.Executors, snap.Counters = s.disp.Leases(), s.disp.Executors(), s.disp.Counters
	snap.FreeSlots = s.disp.FreeSlots()
	snap.Types, snap.AnyType = s.disp.Types()
	snap.Unplaceable = s.disp.Unplaceable()
	snap.Paused = s.disp.Paused()
	return snap
}

// locate says where each unfinished task waits: not taken in yet
// (standby), attached to an original, or wherever the dispatcher holds it,
// with the reason a queued task cannot progress.
func (s *shell) locate(ids []uint64) []task.Location {
	out := make([]task.Location, len(ids))
	for i, id := range ids {
		switch attached, live := s.dedupe.State(id); {
		case attached:
			out[i].State = messages.StateAttached
		case live:
			out[i].State = messages.StateQueued
			if st := s.disp.State(id); st != messages.StateUnknown {
				out[i].State = st
			}
		default:
			out[i].State = messages.StateStandby
		}
		out[i].Reason = s.disp.Reason(id)
	}
	return out
}
