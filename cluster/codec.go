// Package cluster carries shoal messages between nodes over protoactor remote.
//
// At the protoactor version shoal pins, remote serializes every outbound
// message with protobuf, whatever serializer is registered: a plain Go struct
// sent to a remote PID is logged and dropped, with no dead letter. Codec
// therefore travels shoal messages as a *anypb.Any whose TypeUrl names the
// message ("shoal/shoal.Submit") and whose Value is its msgpack encoding.
// anypb.Any is a proto.Message that remote already knows on both ends, so no
// generated code and no RootSerializable wrapper are needed.
//
// Wrapping happens only for remote targets: local sends pass the Go struct
// itself and cost nothing. Incoming envelopes are turned back into structs by
// Codec.ReceiverMiddleware (actors) and Codec.Reply / Codec.Result (futures).
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalrt/shoal/messages"
)

// TypeURLPrefix starts the TypeUrl of every shoal envelope; the registry's
// wire name follows it.
const TypeURLPrefix = "shoal/"

// localAddress is protoactor's address of a system without remote
// (actor.localAddress, unexported). Its PIDs are always local.
const localAddress = "nonhost"

// Codec wraps shoal messages for remote PIDs and unwraps them on arrival. It
// holds no mutable state: one Codec may serve every actor of a node.
type Codec struct {
	reg *messages.Registry
}

// NewCodec returns a codec for the messages of reg (messages.Default()).
func NewCodec(reg *messages.Registry) *Codec { return &Codec{reg: reg} }

// Wrap encodes a registered shoal message (a pointer such as
// *messages.Submit) as the envelope remote can carry: a *anypb.Any, sent to
// the remote PID as it is. It fails for any other type. Its signature fits
// sdk.Conn.Wrap.
func (c *Codec) Wrap(msg any) (any, error) {
	env, err := c.wrap(msg)
	if err != nil {
		return nil, err
	}
	return env, nil
}

func (c *Codec) wrap(msg any) (*anypb.Any, error) {
	name, b, err := c.reg.Encode(msg)
	if err != nil {
		return nil, fmt.Errorf("cluster: wrap: %w", err)
	}
	return &anypb.Any{TypeUrl: TypeURLPrefix + name, Value: b}, nil
}

// Unwrap decodes a shoal envelope. For a *anypb.Any whose TypeUrl starts with
// TypeURLPrefix it returns the decoded message and true, or nil, true and a
// *messages.Error with CodeInvalid when the name is unknown or the bytes are
// malformed (they come from the network). Anything else, including an Any of
// another TypeUrl, comes back unchanged with false.
func (c *Codec) Unwrap(msg any) (any, bool, error) {
	env, ok := msg.(*anypb.Any)
	if !ok || env == nil {
		return msg, false, nil
	}
	name, ok := strings.CutPrefix(env.TypeUrl, TypeURLPrefix)
	if !ok {
		return msg, false, nil
	}
	decoded, err := c.reg.Decode(name, env.Value)
	if err != nil {
		return nil, true, err
	}
	return decoded, true, nil
}

// Decode is Unwrap without the flag: a shoal envelope decoded, anything else
// as it is. Its signature fits sdk.Conn.Unwrap. Unlike Reply it leaves a
// *messages.Error answer a message.
func (c *Codec) Decode(msg any) (any, error) {
	out, _, err := c.Unwrap(msg)
	return out, err
}

// IsRemote reports whether pid lives outside system, exactly as protoactor's
// process registry decides where to route it.
func IsRemote(system *actor.ActorSystem, pid *actor.PID) bool {
	return pid != nil && pid.Address != localAddress && pid.Address != system.Address()
}

// outbound is what to hand protoactor for pid: the envelope (and true) when
// pid is remote and msg is a shoal message, msg itself otherwise (local
// targets, and protoactor's own proto messages such as *actor.PoisonPill).
func (c *Codec) outbound(system *actor.ActorSystem, pid *actor.PID, msg any) (any, bool, error) {
	if !IsRemote(system, pid) || c.reg.Name(msg) == "" {
		return msg, false, nil
	}
	env, err := c.wrap(msg)
	if err != nil {
		return nil, false, err
	}
	return env, true, nil
}

// Send, Request, RequestWithSender and Respond hand msg to protoactor, wrapped
// when the target is remote and msg is a shoal message. They make Codec a
// wire.Transport. Wrapping a registered message cannot fail short of a bug
// (msgpack encodes every field type shoal uses); if it does, the message is
// logged on ctx's logger and dropped, as remote would drop it.

// Send tells msg to pid with no sender.
func (c *Codec) Send(ctx actor.SenderContext, pid *actor.PID, msg any) {
	if out, ok := c.prepare(ctx, pid, msg); ok {
		ctx.Send(pid, out)
	}
}

// Request sends msg to pid with ctx's actor as the sender, so the receiver's
// ctx.Respond (or Transport.Send to ctx.Sender()) comes back to it. From a
// root context there is no sender, as with protoactor's Request.
func (c *Codec) Request(ctx actor.SenderContext, pid *actor.PID, msg any) {
	if out, ok := c.prepare(ctx, pid, msg); ok {
		ctx.Request(pid, out)
	}
}

// RequestWithSender sends msg to pid naming sender as the PID to answer.
// sender must be reachable from pid's node: an actor of a system with remote
// started, whose props carry ReceiverMiddleware.
func (c *Codec) RequestWithSender(ctx actor.SenderContext, pid *actor.PID, msg any, sender *actor.PID) {
	if out, ok := c.prepare(ctx, pid, msg); ok {
		ctx.RequestWithCustomSender(pid, out, sender)
	}
}

// Respond answers the sender of the message ctx is handling. Actors whose
// props carry SenderMiddleware can call ctx.Respond directly instead.
func (c *Codec) Respond(ctx actor.Context, msg any) {
	if ctx.Sender() == nil {
		ctx.Respond(msg) // a dead letter, as protoactor does
		return
	}
	c.Send(ctx, ctx.Sender(), msg)
}

func (c *Codec) prepare(ctx actor.SenderContext, pid *actor.PID, msg any) (any, bool) {
	out, _, err := c.outbound(ctx.ActorSystem(), pid, msg)
	if err != nil {
		ctx.Logger().Error("dropped unencodable message", "target", pid, "error", err)
		return nil, false
	}
	return out, true
}

// RequestFuture sends msg to pid and returns the future of its answer; read
// it with Result.
func (c *Codec) RequestFuture(ctx actor.SenderContext, pid *actor.PID, msg any, timeout time.Duration) (*actor.Future, error) {
	out, _, err := c.outbound(ctx.ActorSystem(), pid, msg)
	if err != nil {
		return nil, err
	}
	return ctx.RequestFuture(pid, out, timeout), nil
}

// Result waits for f and decodes its answer: see Reply.
func (c *Codec) Result(f *actor.Future) (any, error) { return c.Reply(f.Result()) }

// Reply decodes the outcome of a future, as Future.Result or a ReenterAfter
// continuation receive it. A remote answer arrives as a raw *anypb.Any (no
// middleware runs for futures) and is decoded; a local one is returned as is.
// A future error (actor.ErrTimeout, actor.ErrDeadLetter) is returned wrapped,
// an undecodable answer as a CodeInvalid *messages.Error, and an answer that
// is itself a *messages.Error is returned as the error.
func (c *Codec) Reply(res any, err error) (any, error) {
	if err != nil {
		return nil, fmt.Errorf("cluster: request: %w", err)
	}
	msg, _, err := c.Unwrap(res)
	if err != nil {
		return nil, err
	}
	if e, ok := msg.(*messages.Error); ok {
		return nil, e
	}
	return msg, nil
}

// ResultAs is Result for an expected answer type T, such as
// *messages.SubmitAck. Another type is an error wrapping
// messages.ErrInternal.
func ResultAs[T any](c *Codec, f *actor.Future) (T, error) {
	var zero T
	msg, err := c.Result(f)
	if err != nil {
		return zero, err
	}
	t, ok := msg.(T)
	if !ok {
		return zero, fmt.Errorf("cluster: answer is %T, want %T: %w", msg, zero, messages.ErrInternal)
	}
	return t, nil
}

// PropsOptions are both middlewares, for an actor that other nodes talk to:
// props.Configure(codec.PropsOptions(logger)...).
func (c *Codec) PropsOptions(logger *slog.Logger) []actor.PropsOption {
	return []actor.PropsOption{
		actor.WithReceiverMiddleware(c.ReceiverMiddleware(logger)),
		actor.WithSenderMiddleware(c.SenderMiddleware()),
	}
}

// ReceiverMiddleware decodes shoal envelopes before the actor sees them, so
// that Receive switches on *messages.Submit and friends whether the sender is
// local or remote. An envelope that does not decode is dropped and logged on
// logger (the actor system's logger if nil); if it came as a request, the
// sender is answered with the CodeInvalid *messages.Error so that its future
// fails now rather than at its timeout. Other messages pass through.
func (c *Codec) ReceiverMiddleware(logger *slog.Logger) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			msg, wrapped, err := c.Unwrap(env.Message)
			if !wrapped {
				next(ctx, env)
				return
			}
			if err != nil {
				c.refuse(ctx, logger, env, err)
				return
			}
			next(ctx, &actor.MessageEnvelope{Header: env.Header, Message: msg, Sender: env.Sender})
		}
	}
}

func (c *Codec) refuse(ctx actor.ReceiverContext, logger *slog.Logger, env *actor.MessageEnvelope, err error) {
	if logger == nil {
		logger = ctx.Logger()
	}
	typeURL := env.Message.(*anypb.Any).TypeUrl
	logger.Warn("dropped undecodable message", "self", ctx.Self(), "sender", env.Sender,
		"type_url", typeURL, "error", err)
	if env.Sender == nil {
		return
	}
	var e *messages.Error
	if !errors.As(err, &e) {
		e = messages.AsError(err)
	}
	system := ctx.ActorSystem()
	out, _, werr := c.outbound(system, env.Sender, e)
	if werr != nil {
		logger.Error("cannot encode error reply", "error", werr)
		return
	}
	system.Root.Send(env.Sender, out)
}

// SenderMiddleware wraps shoal messages addressed to remote PIDs, so that
// ctx.Send, ctx.Request, ctx.RequestFuture and ctx.Respond work across nodes
// with plain structs. Install it on an actor's props
// (actor.WithSenderMiddleware) or on a root context of its own
// (actor.NewRootContext(system, nil, codec.SenderMiddleware())); do not add
// it to the shared system.Root, whose middleware every user of the system
// would then inherit. A message that fails to encode is logged and dropped,
// as remote would have dropped it.
func (c *Codec) SenderMiddleware() actor.SenderMiddleware {
	return func(next actor.SenderFunc) actor.SenderFunc {
		return func(ctx actor.SenderContext, target *actor.PID, env *actor.MessageEnvelope) {
			out, wrapped, err := c.outbound(ctx.ActorSystem(), target, env.Message)
			if err != nil {
				ctx.Logger().Error("dropped unencodable message", "target", target, "error", err)
				return
			}
			if wrapped {
				// A fresh envelope: env may be the one the sender is handling
				// (Forward), which must not change under it.
				env = &actor.MessageEnvelope{Header: env.Header, Message: out, Sender: env.Sender}
			}
			next(ctx, target, env)
		}
	}
}
