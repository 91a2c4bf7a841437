package messages

import (
	"errors"
	"fmt"
)

// ErrorCode is a typed error that crosses the wire.
type ErrorCode uint16

const (
	CodeOK              ErrorCode = iota
	CodeInvalid                   // malformed request: fix the input
	CodePayloadTooLarge           // payload over the node's limit
	CodeBadPriority               // priority outside [MinPriority, MaxPriority]
	CodeBadRequirement            // requirement that does not parse
	CodeOverloaded                // backpressure: standby limit reached, retry later
	CodeNotFound                  // no such task, or its result expired
	CodeVersion                   // protocol version not spoken by this node
	CodeUnauthorized              // missing or wrong token
	CodeUnavailable               // node shutting down or store unavailable
	CodeInternal                  // a bug or an I/O failure: see the node's log
	CodeTimeout                   // the wait ended before the work did
	CodeUnknownExecutor           // executor must Register first
)

var codeNames = [...]string{"ok", "invalid", "payload_too_large", "bad_priority", "bad_requirement",
	"overloaded", "not_found", "version", "unauthorized", "unavailable", "internal", "timeout", "unknown_executor"}

func (c ErrorCode) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Error is an error that crosses the wire. Compare with errors.Is against the
// sentinels below: two Errors match when their codes are equal.
type Error struct {
	Code    ErrorCode `msgpack:"code"`
	Message string    `msgpack:"msg"`
	// Index is the offending task's position in a batch, or -1.
	Index int32 `msgpack:"index"`
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("shoal %s: task %d: %s", e.Code, e.Index, e.Message)
	}
	return fmt.Sprintf("shoal %s: %s", e.Code, e.Message)
}

// Is matches any *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf builds an Error for the whole request.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Index: -1}
}

// TaskErrorf builds an Error naming task index i of a batch.
func TaskErrorf(code ErrorCode, i int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Index: int32(i)}
}

// AsError converts any error into an *Error (CodeInternal when untyped).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errorf(CodeInternal, "%v", err)
}

// Sentinels for errors.Is.
var (
	ErrInvalid         = &Error{Code: CodeInvalid, Message: "invalid request", Index: -1}
	ErrPayloadTooLarge = &Error{Code: CodePayloadTooLarge, Message: "payload too large", Index: -1}
	ErrBadPriority     = &Error{Code: CodeBadPriority, Message: "priority out of range", Index: -1}
	ErrBadRequirement  = &Error{Code: CodeBadRequirement, Message: "bad requirement", Index: -1}
	ErrOverloaded      = &Error{Code: CodeOverloaded, Message: "node overloaded, retry later", Index: -1}
	ErrNotFound        = &Error{Code: CodeNotFound, Message: "not found", Index: -1}
	ErrVersion         = &Error{Code: CodeVersion, Message: "unsupported protocol version", Index: -1}
	ErrUnauthorized    = &Error{Code: CodeUnauthorized, Message: "unauthorized", Index: -1}
	ErrUnavailable     = &Error{Code: CodeUnavailable, Message: "unavailable", Index: -1}
	ErrInternal        = &Error{Code: CodeInternal, Message: "internal error", Index: -1}
	ErrTimeout         = &Error{Code: CodeTimeout, Message: "timed out", Index: -1}
	ErrUnknownExecutor = &Error{Code: CodeUnknownExecutor, Message: "executor not registered", Index: -1}
)
