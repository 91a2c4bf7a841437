package steal

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Name is the stealer actor's name on every node.
const Name = "shoal-steal"

// Deps are the stealer's collaborators.
type Deps struct {
	// Self is this node's name.
	Self string
	// Dispatch is this node's dispatcher.
	Dispatch *actor.PID
	// Codec talks to peers' dispatchers.
	Codec *cluster.Codec
	// Peers lists the other members with their gossiped queue depth.
	Peers func() []Peer
	// ClassOf maps a priority to its class (the intake's ranges).
	ClassOf func(int32) messages.Class
	Logger  *slog.Logger
	Now     func() time.Time
}

type tick struct{}

// fromPeer is an answer of a peer's dispatcher, relayed by its link.
type fromPeer struct {
	peer string
	msg  any
}

// Props returns the stealer actor.
func Props(cfg Config, d Deps) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &shell{cfg: cfg, d: d, m: New(cfg, d.Self, d.ClassOf), links: map[string]*actor.PID{}}
	})
}

type shell struct {
	cfg    Config
	d      Deps
	m      *Machine
	timer  actorio.Timer
	links  map[string]*actor.PID // peer name → the child that receives its answers
	stolen int64                 // tasks stolen so far
}

func (s *shell) Receive(ctx actor.Context) {
	now := s.d.Now()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.timer.Arm(ctx.ActorSystem(), ctx.Self(), s.cfg.Every, tick{})
	case tick:
		s.timer.Clear()
		f := ctx.RequestFuture(s.d.Dispatch, task.SnapshotRequest{}, s.cfg.Every*5)
		ctx.ReenterAfter(f, func(res any, err error) {
			s.timer.Arm(ctx.ActorSystem(), ctx.Self(), s.cfg.Every, tick{})
			snap, ok := res.(task.Snapshot)
			if err != nil || !ok {
				return
			}
			local := Local{FreeSlots: snap.FreeSlots, Types: snap.Types, AnyType: snap.AnyType}
			for _, q := range snap.Queued {
				local.Queued += q
			}
			s.apply(ctx, s.m.Tick(s.d.Now(), local, s.d.Peers()))
		})
	case fromPeer:
		switch r := msg.msg.(type) {
		case *messages.Registered:
			if r.Err != nil {
				s.d.Logger.Warn("steal registration refused", "peer", msg.peer, "err", r.Err)
			}
			s.m.Registered(msg.peer, r)
		case *messages.Grant:
			fx := s.m.Grant(msg.peer, r)
			if n := len(fx.Enqueue); n > 0 {
				s.d.Logger.Debug("stole tasks", "peer", msg.peer, "tasks", n)
				s.stolen += int64(n)
			}
			s.apply(ctx, fx)
		}
	case task.StolenResults:
		s.apply(ctx, s.m.Results(now, msg.Results))
	case task.CountersRequest:
		ctx.Respond(task.Counters{Stolen: s.stolen})
	case *actor.Stopping:
		s.timer.Stop()
	}
}

func (s *shell) apply(ctx actor.Context, fx Effects) {
	if len(fx.Enqueue) > 0 {
		ctx.Send(s.d.Dispatch, task.EnqueueStolen{Tasks: fx.Enqueue})
	}
	if len(fx.Cancel) > 0 {
		ctx.Send(s.d.Dispatch, task.CancelQueued{IDs: fx.Cancel})
	}
	for _, snd := range fx.Sends {
		remote := s.m.Remote(snd.Peer)
		if remote == "" {
			continue
		}
		s.d.Codec.RequestWithSender(ctx, actor.NewPID(remote, messages.ActorDispatch), snd.Msg, s.link(ctx, snd.Peer))
	}
}

// link is the child that receives one peer's answers (a Grant does not say
// which dispatcher sent it).
func (s *shell) link(ctx actor.Context, peer string) *actor.PID {
	if pid := s.links[peer]; pid != nil {
		return pid
	}
	parent := ctx.Self()
	props := actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *messages.Registered, *messages.Grant:
			c.Send(parent, fromPeer{peer: peer, msg: m})
		}
	}).Configure(s.d.Codec.PropsOptions(s.d.Logger)...)
	pid, err := ctx.SpawnNamed(props, "link-"+peer)
	if err != nil {
		pid = actor.NewPID(ctx.Self().Address, ctx.Self().Id+"/link-"+peer) // already running
	}
	s.links[peer] = pid
	return pid
}
