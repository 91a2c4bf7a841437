package main

import (
	"errors"
	"fmt"
	"os"
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
