package task

import "github.com/shoalrt/shoal/messages"

// The messages the node's actors exchange about tasks. They live here, not
// in the sender's package, so that actors never import each other.

// Persisted is what intake hands the pump once a batch is durable.
type Persisted struct{ Tasks []Record }

// Routed is a Submit whose tasks this node's router already validated and
// digested (Digests[i] belongs to Submit.Tasks[i]): intake skips hashing
// them again. It is answered like a Submit.
type Routed struct {
	Submit  *messages.Submit
	Digests []Digest
}

// Credit returns queue places to the pump, per class.
type Credit struct{ N [messages.NumClasses]int }

// Forward carries tasks from the pump to dedupe.
type Forward struct{ Tasks []Record }

// Enqueue carries originals from dedupe to the dispatcher.
type Enqueue struct{ Tasks []Record }

// Finished carries terminal results of originals from the dispatcher.
type Finished struct{ Results []Result }

// CancelQueued asks the dispatcher to cancel originals.
type CancelQueued struct{ IDs []uint64 }

// DedupeStateRequest asks which tasks dedupe holds (answered with
// []messages.TaskState: StateAttached for a waiting duplicate, StateQueued
// for a live original — the dispatcher knows more — and StateStandby for a
// task dedupe has not received yet).
type DedupeStateRequest struct{ IDs []uint64 }

// Completed tells the result hub which results are now durable.
type Completed struct{ Results []Result }

// Snapshot is the dispatcher's view, for status.
type Snapshot struct {
	Queued    [messages.NumClasses]int
	Leases    int
	Executors []messages.ExecutorStatus
	Counters  DispatchCounters
	// FreeSlots, Types and AnyType describe the executors for a stealer.
	FreeSlots int
	Types     []string
	AnyType   bool
	// Unplaceable lists the requirement shapes no registered executor
	// satisfies (status, and demand for the cloud actor).
	Unplaceable []Unplaceable
}

// SnapshotRequest asks the dispatcher for a Snapshot (answered to the sender).
type SnapshotRequest struct{}

// StateRequest asks where tasks are (answered with []messages.TaskState).
type StateRequest struct{ IDs []uint64 }

// ReasonRequest asks why tasks cannot progress (answered with []string, ""
// where nothing is wrong).
type ReasonRequest struct{ IDs []uint64 }

// Evict asks the dispatcher to forget an executor and requeue its leases
// at once (Machine.Evict). Sent by the supervisor.
type Evict struct{ Executor, Reason string }

// EvictAddress evicts every executor whose replies go to Address (a
// process whose connection was lost: its remote endpoint terminated).
type EvictAddress struct{ Address, Reason string }

// SetState makes an executor active, sleeping or draining
// (Machine.SetState). Answered with a StateResult when sent as a request.
type SetState struct{ Executor, State string }

// StateResult answers SetState.
type StateResult struct{ Err error }

// DispatchCounters are cumulative.
type DispatchCounters struct {
	Granted, Completed, Failed, Retried, Dead, Expired, Stale, Cancelled int64
	// Evicted counts leases requeued at once because their executor was
	// evicted (evict.go); Slept and Woken count state changes.
	Evicted, Slept, Woken int64
}

// Unplaceable is one task type and requirement shape no registered
// executor satisfies.
type Unplaceable struct {
	Type         string
	Shape        string            // canonical text, e.g. "os=macos; xcode >= 15, < 16"
	Requirements map[string]string // without the size key
	Tasks        int
	Since        int64 // unix ns of the oldest
}

// EnqueueStolen carries stolen tasks from the stealer to the dispatcher.
type EnqueueStolen struct{ Tasks []Record }

// StolenResults carries results of stolen tasks from the dispatcher to the
// stealer.
type StolenResults struct{ Results []messages.Result }
