package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/sdk"
)

// httpFlags are the `shoal node` flags of the HTTP/JSON API.
type httpFlags struct {
	addr, token string
	maxBody     int64
}

func (h *httpFlags) add(f *pflag.FlagSet) {
	d := api.DefaultConfig()
	f.StringVar(&h.addr, "http", "", "host:port of the HTTP/JSON API and HTTP agents (empty: off; port 0: any free port). See docs/api.md")
	f.StringVar(&h.token, "api-token", "", "bearer token the HTTP API requires (Authorization: Bearer <token>; empty: none, loopback use only)")
	f.Int64Var(&h.maxBody, "http-max-body", d.MaxBodyBytes, "largest HTTP request body in bytes")
}

// start serves the API on the node's actor system until ctx ends; it does
// nothing when --http is unset. It prints the line scripts wait for.
func (h *httpFlags) start(ctx context.Context, system *actor.ActorSystem, out io.Writer, log *slog.Logger) (done <-chan error, err error) {
	if h.addr == "" {
		if h.token != "" {
			return nil, fmt.Errorf("--api-token needs --http host:port")
		}
		return nil, nil
	}
	cfg := api.DefaultConfig()
	cfg.Token, cfg.MaxBodyBytes, cfg.Logger = h.token, h.maxBody, log
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
