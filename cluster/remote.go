package cluster

import (
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

// StartRemote makes system reachable by other nodes: it configures protoactor
// remote on host:port and starts its gRPC server. Port 0 picks a free port;
// the address peers must dial (host:port, to put in a PID or in memberlist
// metadata) is system.Address() afterwards, and is logged on logger.
//
// The server accepts gRPC messages up to MaxRecvBytes. opts are remote's own
// options (remote.WithEndpointWriterBatchSize, remote.WithAdvertisedHost,
// ...), applied after that default: remote.WithServerOptions replaces it, so
// repeat grpc.MaxRecvMsgSize there. Caveats of this protoactor version:
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
	opts = append([]remote.ConfigOption{remote.WithServerOptions(grpc.MaxRecvMsgSize(MaxRecvBytes))}, opts...)
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

func netAddr(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }
