// Package sdk is shoal's Go client and worker. Both talk to a node through a
// Conn: in the node's own process (Local) or from another process over
// protoactor remote (Dial).
package sdk

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/wire"
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
	close  func() error
}

// Local connects to a node running on system (same process).
func Local(system *actor.ActorSystem) *Conn {
	id := func(m any) (any, error) { return m, nil }
	return &Conn{System: system, Node: system.Address(), Transport: wire.Local{}, Wrap: id, Unwrap: id}
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

var _ = messages.ActorIntake
