package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// The audit task type names each execution: its output is an id no other
// execution anywhere has (host, process start, sequence). With the worker's
// --journal, a checker matches a task's durable output to the one
// execution that produced it, and so can tell whether the task ran again
// after that result was durable (deploy/test-cluster.sh).
func init() {
	builtin["audit"] = struct {
		help string
		h    sdk.Handler
	}{"sleeps the duration before ':' (payload \"50ms:key\") and returns a unique execution id", auditTask}
}

var (
	auditPrefix = func() string {
		h, _ := os.Hostname()
		return fmt.Sprintf("%s-%d-%d", h, os.Getpid(), time.Now().UnixNano())
	}()
	auditSeq atomic.Int64
)

func auditTask(ctx context.Context, t messages.Task) ([]byte, error) {
	d, _, ok := strings.Cut(string(t.Payload), ":")
	wait, err := time.ParseDuration(d)
	if !ok || err != nil || wait < 0 || wait > time.Minute {
		return nil, sdk.Permanent(fmt.Errorf("audit: payload %q: want \"DURATION:key\" with a duration up to 1m", t.Payload))
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return fmt.Appendf(nil, "%s-%d", auditPrefix, auditSeq.Add(1)), nil
}
