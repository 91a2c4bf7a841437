package main

import (
	"context"
	"log/slog"
)

// routine lists protoactor log messages that are errors to protoactor but
// routine for shoal: a client or worker that disconnects closes its stream.
var routine = map[string]bool{
	"EndpointWriter lost connection": true,
	"EndpointReader failed to read":  true,
}

// demoted logs routine protoactor errors at Debug; everything else as is.
type demoted struct{ slog.Handler }

func (h demoted) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && routine[r.Message] {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoted) Enabled(ctx context.Context, l slog.Level) bool { return h.Handler.Enabled(ctx, l) }
func (h demoted) WithAttrs(a []slog.Attr) slog.Handler           { return demoted{h.Handler.WithAttrs(a)} }
func (h demoted) WithGroup(n string) slog.Handler                { return demoted{h.Handler.WithGroup(n)} }

// actorLogger is the logger for actor systems: log with routine
// disconnects demoted.
func actorLogger(log *slog.Logger) *slog.Logger { return slog.New(demoted{log.Handler()}) }
