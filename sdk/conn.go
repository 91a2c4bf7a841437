// Package sdk is shoal's Go client and worker. Both talk to a node through a
// Conn: in the node's own process (Local) or from another process over
// protoactor remote (Dial).
package sdk

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/wire"
	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/messages"
)

// Conn is a route to one node's actors.
type Conn struct {
	// System is the local actor system the client and workers live in.
	System *actor.ActorSystem
	// Node is the node's actor-system address.
	Node string
	// Transport sends to the node's PIDs.
	Transport wire.Transport
	// Wrap prepares a request for a future (identity for local PIDs).
	Wrap func(msg any) (any, error)
	// Unwrap decodes a future's answer (identity for local PIDs).
	Unwrap func(msg any) (any, error)
	// Props are options for actors spawned on this Conn (codec middlewares).
	Props []actor.PropsOption
	close func() error
}

// Local connects to a node running on system (same process).
func Local(system *actor.ActorSystem) *Conn {
	id := func(m any) (any, error) { return m, nil }
	return &Conn{System: system, Node: system.Address(), Transport: wire.Local{}, Wrap: id, Unwrap: id}
}

// DialConfig configures Dial.
type DialConfig struct {
	// Host is the local address the node answers to. Default 127.0.0.1.
	Host string
	// Port is the local port (0: any free port).
	Port int
	// Logger receives connection logs. Default: discard.
	Logger *slog.Logger
}

// Dial connects to the node at addr (host:port of its remote listener) from
// another process. It starts a local actor system with remote; only one Dial
// per process (a protoactor limitation: see PROTOACTOR.md).
func Dial(addr string, cfg DialConfig) (*Conn, error) {
	if addr == "" {
		return nil, fmt.Errorf("sdk: dial: empty node address; pass host:port of `shoal node --listen`")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	r, err := cluster.StartRemote(system, cfg.Host, cfg.Port, logger)
	if err != nil {
		return nil, fmt.Errorf("sdk: dial %s: %w", addr, err)
	}
	codec := cluster.NewCodec(messages.Default())
	return &Conn{
		System: system, Node: addr, Transport: codec, Wrap: codec.Wrap, Unwrap: codec.Decode,
		Props: codec.PropsOptions(logger),
		close: func() error { r.Shutdown(true); return nil },
	}, nil
}

// PID is the node's actor of the given well-known name (messages.Actor*).
func (c *Conn) PID(name string) *actor.PID { return actor.NewPID(c.Node, name) }

// Close releases what Dial started (nothing for Local).
func (c *Conn) Close() error {
	if c.close != nil {
		return c.close()
	}
	return nil
}
