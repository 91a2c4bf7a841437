package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Exit statuses of shoal commands (documented in `shoal --help`).
const (
	exitOK = 0
	// exitError: the command failed (bad flags, node unreachable, refused).
	exitError = 1
	// exitTaskFailed: a waited-for task or flow ended dead, cancelled or
	// failed (submit --wait, wait, flow run --wait).
	exitTaskFailed = 2
	// exitNotFinished: --timeout passed before every waited-for task or
	// flow finished.
	exitNotFinished = 3
)

// codedError is an error with the exit status it ends the command with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, format string, args ...any) error {
	return &codedError{code, fmt.Errorf(format, args...)}
}

// exitCode is the exit status for err (nil: 0).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
	}
	os.Exit(exitCode(err))
}

// waitResult turns what Wait returned for ids into the command's error: nil
// when every task is done; exitNotFinished when timeout passed first
// ("not finished within 1s; state: queued"); exitTaskFailed when one ended
// dead or cancelled. what names the things waited for ("task", "flow").
func waitResult(what string, outcomes []messages.Outcome, err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
		var open []messages.Outcome
		for _, o := range outcomes {
			if !o.State.Terminal() {
				open = append(open, o)
			}
		}
		switch {
		case len(outcomes) == 0:
			return withCode(exitNotFinished, "not finished within %s; the node did not answer in time", timeout)
		case len(outcomes) == 1:
			return withCode(exitNotFinished, "%s %d not finished within %s; state: %s", what, outcomes[0].TaskID, timeout, outcomes[0].State)
		}
		return withCode(exitNotFinished, "%d of %d %ss not finished within %s; states: %s", len(open), len(outcomes), what, timeout, countStates(open))
	}
	if err != nil {
		return err
	}
	var bad []messages.Outcome
	for _, o := range outcomes {
		if o.State != messages.StateDone {
			bad = append(bad, o)
		}
	}
	switch {
	case len(bad) == 0:
		return nil
	case len(outcomes) == 1:
		return withCode(exitTaskFailed, "%s %d %s", what, bad[0].TaskID, bad[0].State)
	}
	return withCode(exitTaskFailed, "%d of %d %ss did not end done: %s", len(bad), len(outcomes), what, countStates(bad))
}

// countStates is "dead 2, cancelled 1" (in order of first appearance).
func countStates(os []messages.Outcome) string {
	n := map[messages.TaskState]int{}
	var order []messages.TaskState
	for _, o := range os {
		if n[o.State] == 0 {
			order = append(order, o.State)
		}
		n[o.State]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s %d", s, n[s])
	}
	return strings.Join(parts, ", ")
}
