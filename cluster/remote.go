package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"

	"github.com/shoalrt/shoal/messages"
)

// MaxRecvBytes is the largest gRPC message StartRemote lets its server
// accept, where gRPC's default is 4 MiB. Remote packs up to
// EndpointWriterBatchSize queued messages into one gRPC message, and one over
// the limit is not refused politely: the receiver closes the stream, every
// message of that batch is lost without a dead letter, and the sender's
// requests time out. Room for two messages of messages.MaxMessageBytes keeps
// any single shoal message deliverable; keeping messages far smaller (batch
// tasks by count and bytes) keeps batches under it.
const MaxRecvBytes = 2*messages.MaxMessageBytes + 1<<20

// EndpointWriterQueueSize is the initial length of the queue protoactor
// remote keeps per peer node for outbound messages (StartRemote's default).
// The queue grows by doubling when full and never drops a message, so this
// is no limit; remote's own default, 1,000,000, allocated a 16 MB array of
// interface slots per peer that every garbage collection cycle of the
// process scanned (a measurable share of a three-node W1's CPU, see
// docs/benchmarks.md).
const EndpointWriterQueueSize = 4096

// StartRemote makes system reachable by other nodes: it configures protoactor
// remote on host:port and starts its gRPC server. Port 0 picks a free port;
// the address peers must dial (host:port, to put in a PID or in memberlist
// metadata) is system.Address() afterwards, and is logged on logger.
//
// Three gRPC server options are added to those opts give (opts are remote's
// own: remote.WithEndpointWriterBatchSize, remote.WithAdvertisedHost,
// remote.WithServerOptions, ...), and the endpoint writer queue starts at
// EndpointWriterQueueSize (remote.WithEndpointWriterQueueSize in opts wins):
//   - messages up to MaxRecvBytes (a grpc.MaxRecvMsgSize in opts wins);
//   - pooled receive buffers (grpc.RecvBufferPool);
//   - interceptors that turn a panic in remote's handlers into an error for
//     that one stream or call, logged on logger. Without them any process
//     that reaches the port can crash the node: remote dereferences nil on a
//     batch naming an unknown message type, and its ListProcesses and
//     GetProcessDiagnostics handlers panic("implement me").
//
// Caveats of this protoactor version:
//   - start one remote per process: a second Remote.Start in the same process
//     races with the first one's goroutines (and with -race, fails tests);
//   - Remote.Start replaces grpc's global logger with a discarding one.
//
// Stop it with Remote.Shutdown after stopping the actors that use it.
func StartRemote(system *actor.ActorSystem, host string, port int, logger *slog.Logger, opts ...remote.ConfigOption) (r *remote.Remote, err error) {
	if system == nil {
		return nil, errors.New("cluster: start remote: nil actor system")
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("cluster: start remote: port %d outside [0, 65535]", port)
	}
	if logger == nil {
		logger = system.Logger()
	}
	ours := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvBytes),
		// Reuse receive buffers: remote's messages are protobuf, whose
		// Unmarshal copies every bytes field out of the buffer, and grpc
		// returns a buffer to the pool only after Unmarshal (v1.60 rpc_util.go
		// recv). Without it every received batch allocated a fresh buffer.
		grpc.RecvBufferPool(grpc.NewSharedBufferPool()),
		grpc.ChainStreamInterceptor(recoverStream(logger)),
		grpc.ChainUnaryInterceptor(recoverUnary(logger)),
		grpc.UnknownServiceHandler(probeHandler), // Probe
	}
	opts = append([]remote.ConfigOption{remote.WithEndpointWriterQueueSize(EndpointWriterQueueSize)}, opts...)
	// Ahead of the caller's server options, so that theirs override ours.
	opts = append(opts, func(c *remote.Config) { c.ServerOptions = append(ours, c.ServerOptions...) })
	r = remote.NewRemote(system, remote.Configure(host, port, opts...))
	// Remote.Start panics when it cannot listen (address in use, bad host).
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("cluster: start remote on %s: %v", netAddr(host, port), p)
		}
	}()
	r.Start()
	logger.Info("remote started", "address", system.Address(), "listen", netAddr(host, port))
	return r, nil
}

// errHandlerPanic is what a peer gets back when remote's handler panicked on
// its stream or call.
var errHandlerPanic = errors.New("shoal: the node could not handle this remote message")

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.Error("remote handler panicked", "method", info.FullMethod, "panic", p)
				err = errHandlerPanic
			}
		}()
		return handler(srv, ss)
	}
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.Error("remote handler panicked", "method", info.FullMethod, "panic", p)
				resp, err = nil, errHandlerPanic
			}
		}()
		return handler(ctx, req)
	}
}

func netAddr(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }
