package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// journalWriter records every execution a worker finishes, so a test (or an
// auditor) can count how often each payload really ran. A line is
//
//	id  attempt  type  "payload"  ok  start-unix-ns  end-unix-ns  "output"
//
// tab-separated, payload and output Go-quoted. The times let a checker tell
// an execution that started after another one's result was durable
// (deploy/test-cluster.sh).
type journalWriter struct {
	mu sync.Mutex
	f  *os.File
}

func openJournal(path string) (*journalWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--journal: %w", err)
	}
	return &journalWriter{f: f}, nil
}

// wrap returns h journaled; a nil journal returns h unchanged.
func (j *journalWriter) wrap(h sdk.Handler) sdk.Handler {
	if j == nil {
		return h
	}
	return func(ctx context.Context, t messages.Task) ([]byte, error) {
		start := time.Now()
		out, err := h(ctx, t)
		end := time.Now()
		j.mu.Lock()
		fmt.Fprintf(j.f, "%d\t%d\t%s\t%q\t%v\t%d\t%d\t%q\n", t.ID, t.Attempt, t.Type, t.Payload, err == nil, start.UnixNano(), end.UnixNano(), out)
		j.mu.Unlock()
		return out, err
	}
}

func (j *journalWriter) Close() error {
	if j == nil {
		return nil
	}
	return j.f.Close()
}
