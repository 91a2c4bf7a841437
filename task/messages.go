package task

import (
	"strconv"
	"strings"

	"github.com/shoalrt/shoal/messages"
)

// The messages the node's actors exchange about tasks. They live here, not
// in the sender's package, so that actors never import each other.

// Persisted is what intake hands the queue once a batch is durable.
type Persisted struct{ Tasks []Record }

// Waiting tells intake how many tasks wait before the dispatch queues, for
// its admission control: Standby tasks wait in the store, and Placed counts
// every persisted task the queue has taken in (fast path or standby) since
// it started, so intake's accepted-but-not-placed count is its own
// admitted count minus Placed.
type Waiting struct{ Standby, Placed int64 }

// Routed is a Submit whose tasks this node's router already validated and
// digested (Digests[i] belongs to Submit.Tasks[i]): intake skips hashing
// them again. It is answered like a Submit.
type Routed struct {
	Submit  *messages.Submit
	Digests []Digest
}

// Credit returns queue places, per class: the flow runner frees them when
// a flow task it held finishes.
type Credit struct{ N [messages.NumClasses]int }

// Enqueue carries flow tasks (originals, deduplicated) from the queue to the
// flow runner.
type Enqueue struct{ Tasks []Record }

// Finished carries terminal results of originals the flow runner held back
// to the queue's dedupe.
type Finished struct{ Results []Result }

// CancelQueued asks the flow runner to cancel flow tasks it holds, or the
// queue to cancel stolen tasks its dispatcher holds (sent by the stealer).
type CancelQueued struct{ IDs []uint64 }

// LocateRequest asks the queue where unfinished tasks wait; it is answered
// with []Location, one per id.
type LocateRequest struct{ IDs []uint64 }

// Location is where an unfinished task waits: StateStandby (in the store,
// not yet taken in), StateAttached (a duplicate waiting for its original),
// StateQueued, StateLeased or StateFailed; Reason says why a queued task
// cannot progress ("" when nothing is wrong).
type Location struct {
	State  messages.TaskState
	Reason string
}

// CountersRequest asks an actor for its cumulative counts; it answers with
// Counters holding the fields it owns (the node adds the answers up).
type CountersRequest struct{}

// Counters are a node's cumulative counts, each owned by one actor: intake
// (Accepted), the result hub (Done, Deduplicated, Dead, Cancelled), the
// queue (Standby, StandbyPeak, ClassStandby) and the stealer (Stolen).
type Counters struct {
	Accepted, Done, Deduplicated, Dead, Cancelled int64
	// Standby is how many tasks wait in the store for a queue place now;
	// StandbyPeak the most that ever did since the node started.
	Standby, StandbyPeak int64
	ClassStandby         [messages.NumClasses]int64
	// Stolen counts tasks this node leased from loaded peers.
	Stolen int64
}

// Add adds o's counts to c.
func (c *Counters) Add(o Counters) {
	c.Accepted += o.Accepted
	c.Done += o.Done
	c.Deduplicated += o.Deduplicated
	c.Dead += o.Dead
	c.Cancelled += o.Cancelled
	c.Standby += o.Standby
	c.StandbyPeak += o.StandbyPeak
	for i := range c.ClassStandby {
		c.ClassStandby[i] += o.ClassStandby[i]
	}
	c.Stolen += o.Stolen
}

// Finished is how many tasks have a durable terminal result.
func (c Counters) Finished() int64 { return c.Done + c.Deduplicated + c.Dead + c.Cancelled }

// Count adds durable results to the result hub's counts.
func (c *Counters) Count(rs []Result) {
	for i := range rs {
		switch r := &rs[i]; {
		case r.AliasOf != 0 && r.State == messages.StateDone:
			c.Deduplicated++
		case r.State == messages.StateDone:
			c.Done++
		case r.State == messages.StateDead:
			c.Dead++
		case r.State == messages.StateCancelled:
			c.Cancelled++
		}
	}
}

// FinishedRequest asks the result hub to answer (with its Counters) once
// at least AtLeast tasks have a durable terminal result: a way to wait for
// a count without polling.
type FinishedRequest struct{ AtLeast int64 }

// FlowsActive tells the result hub whether the flow runner holds running
// flows: only then does it forward durable results to the runner.
type FlowsActive struct{ Active bool }

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
	// Paused is what the dispatcher holds back (messages.Pause).
	Paused Paused
}

// SnapshotRequest asks the dispatcher for a Snapshot (answered to the sender).
type SnapshotRequest struct{}

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
	// TimedOut counts attempts failed by their run timeout (timeout.go).
	TimedOut int64
}

// Unplaceable is one task type and requirement shape no registered
// executor satisfies.
type Unplaceable struct {
	Type         string
	Shape        string            // canonical text, e.g. "os=macos; xcode >= 15, < 16"
	Requirements map[string]string // without the size key
	Tasks        int
	Since        int64 // unix ns of the oldest
	// Refused says which dispatch filter refused which executors, in
	// filter order (an executor under the first that refused it); Reason
	// is the human sentence, as a Wait reports it.
	Refused Refusals
	Reason  string
}

// Refusal is one dispatch filter's refusals for an unplaceable shape, like
// Nomad's FilterNode metrics.
type Refusal struct {
	Filter    string   // the filter's name: type, capabilities, state, pin
	Executors []string // the executors it refused, by id
}

// Refusals are the refusals of a filter chain, in its order.
type Refusals []Refusal

// maxNamed bounds the executor ids String lists per filter.
const maxNamed = 5

// String is the human form: "type refused 3 (a, b, c); capabilities
// refused 1 (d)", or "no executor registered" when nothing refused.
func (rs Refusals) String() string {
	if len(rs) == 0 {
		return "no executor registered"
	}
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Filter)
		b.WriteString(" refused ")
		b.WriteString(strconv.Itoa(len(r.Executors)))
		b.WriteString(" (")
		for j, id := range r.Executors {
			if j == maxNamed {
				b.WriteString(", +")
				b.WriteString(strconv.Itoa(len(r.Executors) - maxNamed))
				b.WriteString(" more")
				break
			}
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(id)
		}
		b.WriteString(")")
	}
	return b.String()
}

// EnqueueStolen carries stolen tasks from the stealer to the dispatcher.
type EnqueueStolen struct{ Tasks []Record }

// StolenResults carries results of stolen tasks from the dispatcher to the
// stealer.
type StolenResults struct{ Results []messages.Result }
