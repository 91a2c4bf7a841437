// Package sdk is shoal's Go client and worker. Both talk to a node through a
// Conn: in the node's own process (Local) or from another process over
// protoactor remote (Dial).
package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/cluster"
	"github.com/shoalrt/shoal/internal/actorio"
	"github.com/shoalrt/shoal/messages"
)

// Conn is a route to one node's actors.
type Conn struct {
	// System is the local actor system the client and workers live in.
	System *actor.ActorSystem
	// Node is the node's actor-system address.
	Node string
	// Transport sends to the node's PIDs.
	Transport actorio.Transport
	// Wrap prepares a request for a future (identity for local PIDs).
	Wrap func(msg any) (any, error)
	// Unwrap decodes a future's answer (identity for local PIDs).
	Unwrap func(msg any) (any, error)
	// Props are options for actors spawned on this Conn (codec middlewares).
	Props []actor.PropsOption
	// RouteToOwners makes clients on this Conn send each task to its
	// partition's owner and Wait and Cancel to each id's holder
	// (DialConfig.RouteToOwners).
	RouteToOwners bool
	close         func() error
}

// Local connects to a node running on system (same process).
func Local(system *actor.ActorSystem) *Conn {
	id := func(m any) (any, error) { return m, nil }
	return &Conn{System: system, Node: system.Address(), Transport: actorio.Local{}, Wrap: id, Unwrap: id}
}

// DialConfig configures Dial.
type DialConfig struct {
	// Host is the local address the node answers to (protoactor dials the
	// client back). Default: 127.0.0.1 for a node on loopback, otherwise the
	// local IP this machine uses to reach the node (so a client in a
	// container or on another host is reachable without configuration).
	Host string
	// Port is the local port (0: any free port).
	Port int
	// Logger receives connection logs. Default: discard.
	Logger *slog.Logger
	// Security is the TLS and token of the cluster (docs/security.md).
	Security cluster.Security
	// ProbeTimeout bounds the check Dial makes that the node accepts this
	// client (TLS, token). Default cluster.DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// RouteToOwners makes clients send each task of a batch straight to its
	// partition's owner (and Wait and Cancel straight to each id's holder),
	// saving the router's second hop. The client learns the members and the
	// digest configuration from the node's Status every second (sdk.ViewEvery).
	// A wrong guess is still correct (routers forward). A batch split across
	// owners is atomic per owner only. Default false: everything goes to the
	// dialled node.
	RouteToOwners bool
}

// ErrInvalidConfig is wrapped by every error of DialConfig.Validate and
// WorkerConfig.Validate.
var ErrInvalidConfig = errors.New("sdk: invalid config")

// Validate names the first bad field. Zero values take their defaults.
func (c DialConfig) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: DialConfig.Port must be in [0, 65535] (0: any free port), got %d", ErrInvalidConfig, c.Port)
	case c.ProbeTimeout < 0:
		return fmt.Errorf("%w: DialConfig.ProbeTimeout must be >= 0 (0: %v), got %v", ErrInvalidConfig, cluster.DefaultProbeTimeout, c.ProbeTimeout)
	}
	if err := c.Security.Validate(); err != nil {
		return fmt.Errorf("%w: DialConfig.Security: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Dial connects to the node at addr (host:port of its remote listener) from
// another process. It starts a local actor system with remote; only one Dial
// per process (a protoactor limitation: see PROTOACTOR.md). Before it
// returns it probes the node (cluster.Probe): a node that is down, a TLS
// mismatch or a refused token is a *messages.Error at once, not requests
// timing out later.
func Dial(addr string, cfg DialConfig) (*Conn, error) {
	if addr == "" {
		return nil, fmt.Errorf("sdk: dial: empty node address; pass host:port of `shoal node --listen`")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sdk: dial %s: %w", addr, err)
	}
	if cfg.Host == "" {
		cfg.Host = localHostFor(addr)
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = cluster.DefaultProbeTimeout
	}
	opts, err := cfg.Security.RemoteOptions()
	if err != nil {
		return nil, fmt.Errorf("sdk: dial %s: %w", addr, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	r, err := cluster.StartRemote(system, cfg.Host, cfg.Port, logger, opts...)
	if err != nil {
		return nil, fmt.Errorf("sdk: dial %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ProbeTimeout)
	defer cancel()
	if err := cluster.Probe(ctx, addr, cfg.Security); err != nil {
		r.Shutdown(true)
		return nil, err
	}
	codec := cluster.NewCodec(messages.Default())
	return &Conn{
		System: system, Node: addr, Transport: codec, Wrap: codec.Wrap, Unwrap: codec.Decode,
		Props: codec.PropsOptions(logger), RouteToOwners: cfg.RouteToOwners,
		close: func() error { r.Shutdown(true); return nil },
	}, nil
}

// localHostFor is the local address a node at addr can reach this process
// at: loopback for a node on loopback, else the source address of the route
// to it (a UDP "connect" sends nothing), else 127.0.0.1.
func localHostFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1"
	}
	if ips, err := net.LookupIP(host); err != nil || len(ips) == 0 || ips[0].IsLoopback() {
		return "127.0.0.1"
	}
	c, err := net.Dial("udp", net.JoinHostPort(host, port))
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
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
