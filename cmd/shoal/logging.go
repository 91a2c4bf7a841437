package main

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/shoalrt/shoal/cluster/route"
)

// routine lists protoactor log messages that are errors to protoactor but
// routine for shoal: a client or worker that disconnects closes its stream.
var routine = map[string]bool{
	"EndpointWriter lost connection": true,
	"EndpointReader failed to read":  true,
}

// reconnects are protoactor's messages of an endpoint writer failing to
// connect (it retries five times, two seconds apart). To a node, a client
// that left after its last request (a CLI command, an interrupted wait whose
// answer comes later) is such an address: routine. Toward a cluster peer
// they stay errors.
var reconnects = map[string]bool{
	"EndpointWriter failed to connect":               true,
	"EndpointWriter failed to create receive stream": true,
}

// peerSet says which protoactor addresses are cluster peers; the zero value
// knows none (a single node: every remote address is a client or worker).
type peerSet struct {
	dir atomic.Pointer[route.Directory]
}

// watch makes the members of dir the peers.
func (p *peerSet) watch(dir *route.Directory) { p.dir.Store(dir) }

func (p *peerSet) has(addr string) bool {
	d := p.dir.Load()
	if d == nil {
		return false
	}
	for _, m := range d.View().Members {
		if m.Remote == addr {
			return true
		}
	}
	return false
}

// demoted logs routine protoactor errors at Debug; everything else as is.
// With peers set (a node's actor system) it also demotes reconnects to
// addresses that are not peers.
type demoted struct {
	slog.Handler
	peers *peerSet
}

func (h demoted) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && (routine[r.Message] || h.clientReconnect(r)) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoted) clientReconnect(r slog.Record) bool {
	if h.peers == nil || !reconnects[r.Message] {
		return false
	}
	addr := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "address" {
			addr = a.Value.String()
			return false
		}
		return true
	})
	return addr != "" && !h.peers.has(addr)
}

func (h demoted) Enabled(ctx context.Context, l slog.Level) bool { return h.Handler.Enabled(ctx, l) }
func (h demoted) WithAttrs(a []slog.Attr) slog.Handler {
	return demoted{h.Handler.WithAttrs(a), h.peers}
}
func (h demoted) WithGroup(n string) slog.Handler { return demoted{h.Handler.WithGroup(n), h.peers} }

// actorLogger is the logger for actor systems: log with routine
// disconnects demoted.
func actorLogger(log *slog.Logger) *slog.Logger { return slog.New(demoted{Handler: log.Handler()}) }

// nodeActorLogger is actorLogger for a node's actor system: reconnects to
// addresses other than peers' (clients and workers that left) are routine
// too.
func nodeActorLogger(log *slog.Logger, peers *peerSet) *slog.Logger {
	if peers == nil {
		peers = &peerSet{}
	}
	return slog.New(demoted{log.Handler(), peers})
}
