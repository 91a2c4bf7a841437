package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/metrics"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// httpFlags are the `shoal node` flags of the HTTP/JSON API.
type httpFlags struct {
	addr, token          string
	maxBody              int64
	maxWait, defaultWait time.Duration
	askTimeout           time.Duration
	maxIDs, maxAgents    int
}

func (h *httpFlags) add(f *pflag.FlagSet) {
	d := api.DefaultConfig()
	f.StringVar(&h.addr, "http", "", "host:port of the HTTP/JSON API and HTTP agents (empty: off; port 0: any free port). See docs/api.md")
	f.StringVar(&h.token, "api-token", "", "bearer token the HTTP API requires (Authorization: Bearer <token>; empty: none, loopback use only)")
	f.Int64Var(&h.maxBody, "http-max-body", d.MaxBodyBytes, "largest HTTP request body in bytes")
	f.DurationVar(&h.maxWait, "http-max-wait", d.MaxWait, "longest HTTP long poll (task wait, agent lease)")
	f.DurationVar(&h.defaultWait, "http-default-wait", d.DefaultWait, "HTTP long poll when the request names none (at most --http-max-wait)")
	f.IntVar(&h.maxIDs, "http-max-ids", d.MaxIDs, "most task ids in one HTTP wait or cancel")
	f.IntVar(&h.maxAgents, "http-max-agents", d.MaxAgents, "most HTTP agents relayed at once")
	f.DurationVar(&h.askTimeout, "http-ask-timeout", d.AskTimeout, "bound on one HTTP request to the node's actors")
}

// config is the API's configuration from the flags, checked (errors name
// the flag).
func (h *httpFlags) config() (api.Config, error) {
	cfg := api.DefaultConfig()
	cfg.Token, cfg.MaxBodyBytes = h.token, h.maxBody
	cfg.MaxWait, cfg.DefaultWait, cfg.MaxIDs, cfg.MaxAgents, cfg.AskTimeout = h.maxWait, h.defaultWait, h.maxIDs, h.maxAgents, h.askTimeout
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("--http-* flags: %w", err)
	}
	return cfg, nil
}

// start serves the API on the node's actor system until ctx ends; it does
// nothing when --http is unset. It prints the line scripts wait for.
func (h *httpFlags) start(ctx context.Context, system *actor.ActorSystem, n *node.Node, out io.Writer, log *slog.Logger) (done <-chan error, err error) {
	if h.addr == "" {
		if h.token != "" {
			return nil, fmt.Errorf("--api-token needs --http host:port")
		}
		return nil, nil
	}
	cfg, err := h.config()
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	cfg.Ready = n.Ready                                           // /readyz
	cfg.Metrics = metrics.Handler(n, metrics.Config{Logger: log}) // /metrics (docs/metrics.md)
	api, err := api.New(cfg, sdk.Local(system))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", h.addr, err)
	}
	if h.token == "" {
		log.Warn("HTTP API without --api-token: anyone who can reach it can submit and cancel tasks", "addr", ln.Addr().String())
	}
	ch := make(chan error, 1)
	go func() { ch <- api.Serve(ctx, ln) }()
	fmt.Fprintf(out, "shoal http api on http://%s\n", ln.Addr())
	return ch, nil
}
