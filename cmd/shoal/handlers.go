package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

// builtin are the task types `shoal worker` and `shoal demo` can run, so the
// runtime can be tried without writing Go.
var builtin = map[string]struct {
	help string
	h    sdk.Handler
}{
	"noop": {"does nothing", func(context.Context, messages.Task) ([]byte, error) { return nil, nil }},
	"echo": {"returns its payload", func(_ context.Context, t messages.Task) ([]byte, error) { return t.Payload, nil }},
	"hash": {"blake3 of the payload, repeated N times (payload \"N:data\", default 1000)", hashTask},
	"sleep": {"sleeps for the payload's duration (e.g. \"25ms\")", func(ctx context.Context, t messages.Task) ([]byte, error) {
		d, err := time.ParseDuration(string(t.Payload))
		if err != nil {
			return nil, sdk.Permanent(fmt.Errorf("sleep: payload %q is not a duration", t.Payload))
		}
		select {
		case <-time.After(d):
			return []byte("slept " + d.String()), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}},
	"flaky": {"fails its first attempt, then succeeds", func(_ context.Context, t messages.Task) ([]byte, error) {
		if t.Attempt < 2 {
			return nil, errors.New("flaky: first attempt fails on purpose")
		}
		return []byte(fmt.Sprintf("ok on attempt %d", t.Attempt)), nil
	}},
	"fail": {"always fails (retried until dead)", func(context.Context, messages.Task) ([]byte, error) {
		return nil, errors.New("fail: this task always fails")
	}},
}

func hashTask(_ context.Context, t messages.Task) ([]byte, error) {
	rounds, data := 1000, t.Payload
	if i := strings.IndexByte(string(t.Payload), ':'); i > 0 {
		if n, err := strconv.Atoi(string(t.Payload[:i])); err == nil && n >= 0 && n <= 10_000_000 {
			rounds, data = n, t.Payload[i+1:]
		}
	}
	sum := blake3.Sum256(data)
	for range rounds {
		sum = blake3.Sum256(sum[:])
	}
	return fmt.Appendf(nil, "%x", sum[:8]), nil
}

func builtinNames() string {
	var names []string
	for n := range builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

func builtinHelp() string {
	var b strings.Builder
	for _, n := range strings.Split(builtinNames(), ",") {
		fmt.Fprintf(&b, "  %-6s %s\n", n, builtin[n].help)
	}
	return b.String()
}
