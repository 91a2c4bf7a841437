// Package actorio is how actor shells send messages: a Transport that passes Go
// structs to local PIDs and encodes them for remote ones (cluster.Codec
// implements it). Shells depend on this interface, never on cluster.
package actorio

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Transport sends messages to PIDs.
type Transport interface {
	// Send delivers msg to `to` with no sender.
	Send(ctx actor.SenderContext, to *actor.PID, msg any)
	// Request delivers msg to `to` with ctx's actor as the sender, so the
	// receiver can answer with ctx.Sender().
	Request(ctx actor.SenderContext, to *actor.PID, msg any)
}

// Local is the Transport for a single process: messages pass as Go values.
type Local struct{}

func (Local) Send(ctx actor.SenderContext, to *actor.PID, msg any)    { ctx.Send(to, msg) }
func (Local) Request(ctx actor.SenderContext, to *actor.PID, msg any) { ctx.Request(to, msg) }

// Timer is a re-armable one-shot timer that sends a message to an actor. It
// replaces protoactor's ReceiveTimeout, whose timer goroutine races with the
// mailbox (see PROTOACTOR.md). Use it from the owning actor only.
type Timer struct {
	t *time.Timer
}

// Arm (re)schedules msg to self after d, cancelling any earlier arming.
func (t *Timer) Arm(system *actor.ActorSystem, self *actor.PID, d time.Duration, msg any) {
	t.Stop()
	t.t = time.AfterFunc(d, func() { system.Root.Send(self, msg) })
}

// Stop cancels a pending arming.
func (t *Timer) Stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

// Armed reports whether an arming is pending (or fired but not yet cleared).
func (t *Timer) Armed() bool { return t.t != nil }

// Clear marks a fired timer as consumed; call it when its message arrives.
func (t *Timer) Clear() { t.t = nil }
