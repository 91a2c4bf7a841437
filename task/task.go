// Package task is shoal's task domain: the records a node keeps for a task
// and its result, the digest that finds duplicates, the validation of a
// submitted task, the requirement grammar, and the messages the node's
// actors exchange about tasks. It is pure: it imports nothing of shoal but
// messages, and no actor, store or network code.
package task

import "github.com/shoalrt/shoal/messages"

// Digest is the blake3-256 digest that identifies duplicate tasks.
type Digest [32]byte

// Record is an accepted task.
type Record struct {
	ID           uint64            `msgpack:"id"`
	Type         string            `msgpack:"type"`
	Payload      []byte            `msgpack:"payload"`
	Priority     int32             `msgpack:"prio"`
	Class        messages.Class    `msgpack:"class"`
	Digest       Digest            `msgpack:"digest"`
	Requirements map[string]string `msgpack:"req,omitempty"`
	MaxAttempts  int32             `msgpack:"max_attempts"`
	Attempts     int32             `msgpack:"attempts"`     // executions started that ended in failure
	SubmittedAt  int64             `msgpack:"submitted_ns"` // unix nanoseconds
	// Size is the task's declared size (any unit, > 0), or 0: placement
	// learns run times per task type and size bucket. Set once at intake,
	// with the reserved requirement messages.ReqSize it agrees with
	// (see Placement); records of older layouts derive it on read.
	Size float64 `msgpack:"size,omitempty"`
	// Pin is the id of the only executor that may run the task, or "". Set
	// once at intake, with the reserved requirement messages.ReqPin
	// ("=<Pin>") that placement matches and that is part of the task's
	// requirement shape; records of older layouts derive it on read.
	Pin string `msgpack:"pin,omitempty"`
	// TimeoutMillis bounds each attempt's run time (0: none): the task's
	// own timeout_ms, else its type's default at intake. Dispatch fails an
	// attempt still leased at the deadline.
	TimeoutMillis int64 `msgpack:"timeout_ms,omitempty"`
}

// Result is the terminal outcome of a task.
type Result struct {
	ID         uint64             `msgpack:"id"`
	Class      messages.Class     `msgpack:"class"` // to drop the pending entry
	Digest     Digest             `msgpack:"digest"`
	State      messages.TaskState `msgpack:"state"` // StateDone, StateDead or StateCancelled
	Output     []byte             `msgpack:"out,omitempty"`
	Error      string             `msgpack:"error,omitempty"`
	Attempts   int32              `msgpack:"attempts"`
	AliasOf    uint64             `msgpack:"alias_of,omitempty"` // duplicate: the original's id
	FinishedAt int64              `msgpack:"finished_ns"`        // unix nanoseconds
}

// Outcome turns a durable result into what a client sees.
func (r Result) Outcome() messages.Outcome {
	return messages.Outcome{TaskID: r.ID, State: r.State, Output: r.Output, Error: r.Error, Attempts: r.Attempts, AliasOf: r.AliasOf}
}
