package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// journalWriter records every execution a worker finishes, so a test (or an
// auditor) can count how often each payload really ran.
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
		out, err := h(ctx, t)
		j.mu.Lock()
		fmt.Fprintf(j.f, "%d\t%d\t%s\t%q\t%v\n", t.ID, t.Attempt, t.Type, t.Payload, err == nil)
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
