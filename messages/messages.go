// Package messages is shoal's wire vocabulary: the msgpack structs that nodes,
// executors and SDK clients exchange, the task states and priority classes, and
// the typed error codes that cross the wire. It imports nothing of the project.
package messages

// ProtocolVersion is carried by every top-level request. A node refuses a
// request whose version it does not speak with CodeVersion.
const ProtocolVersion uint16 = 1

// Priority bounds. A task's priority is an integer in [MinPriority, MaxPriority];
// higher runs first. Priorities map onto classes by configurable ranges.
const (
	MinPriority     int32 = 0
	MaxPriority     int32 = 100
	DefaultPriority int32 = 50
)

// Class is a dispatch queue class (S2.1).
type Class uint8

const (
	ClassHigh Class = iota
	ClassNormal
	ClassLow
	NumClasses = 3
)

func (c Class) String() string {
	switch c {
	case ClassHigh:
		return "high"
	case ClassNormal:
		return "normal"
	case ClassLow:
		return "low"
	}
	return "invalid"
}

// TaskState is the lifecycle state of a task as reported to clients.
type TaskState uint8

const (
	StateUnknown   TaskState = iota // no such task (or its result has expired)
	StateStandby                    // durable, waiting in the store for queue room
	StateQueued                     // in a dispatch queue
	StateLeased                     // granted to an executor, lease live
	StateFailed                     // last attempt failed; waiting for its retry
	StateDone                       // finished successfully; result retrievable
	StateDead                       // failed permanently (attempts exhausted or not retryable)
	StateCancelled                  // cancelled by a client before it finished
	StateAttached                   // a duplicate waiting for its original's result
)

var stateNames = [...]string{"unknown", "standby", "queued", "leased", "failed", "done", "dead", "cancelled", "attached"}

func (s TaskState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Terminal reports whether no further transition can happen.
func (s TaskState) Terminal() bool {
	return s == StateDone || s == StateDead || s == StateCancelled
}

// TaskSpec is one task as a client submits it.
type TaskSpec struct {
	// Encoded as a msgpack array (no field names): it travels by the
	// thousand in batches. New fields go at the end, with a protocol bump.
	_msgpack struct{} `msgpack:",as_array"`

	Type     string `msgpack:"type"`
	Payload  []byte `msgpack:"payload"`
	Priority int32  `msgpack:"prio"`
	// Requirements are capability constraints (label → "=value" or a version
	// constraint such as ">= 15.0, < 16"). Validated at intake.
	Requirements map[string]string `msgpack:"req,omitempty"`
	// MaxAttempts caps executions of this task; 0 takes the node's default.
	MaxAttempts int32 `msgpack:"max_attempts,omitempty"`
	// Size is the task's declared size (any unit, > 0), or 0: placement
	// learns run times per task type and size bucket (docs/supervision.md).
	// Added after protocol 1's first release: older encodings (5 elements)
	// decode with Size 0 and Pin "". The node keeps it in the task's
	// requirements under ReqSize.
	Size float64 `msgpack:"size,omitempty"`
	// Pin, when set, names the only executor that may run the task (a
	// planned allocation, `shoal plan --submit`). The node keeps it in the
	// task's requirements under ReqPin.
	Pin string `msgpack:"pin,omitempty"`
	// TimeoutMillis bounds one attempt's run time: at the deadline the
	// handler's context is cancelled and the attempt fails with a timeout
	// error (retried per MaxAttempts). 0 takes the type's default at the
	// node (none unless configured). Added after Size and Pin: encoded as
	// an 8th element only when set, so older builds, which skip elements
	// past the 7th, read the task without it.
	TimeoutMillis int64 `msgpack:"timeout_ms,omitempty"`
}

// Reserved requirement keys. Size and Pin travel to dispatch inside a task's
// requirements, so neither store layout changed when they were added.
const (
	// ReqPin holds "=<executor id>": every executor offers its own id
	// under this key, so a pinned task matches one executor only.
	ReqPin = "shoal.executor"
	// ReqSize holds "=<size>", the task's declared size. It constrains
	// nothing: dispatch reads it for run-time estimates.
	ReqSize = "shoal.size"
	// CapCloud is the capability "true" of executors the cloud actor
	// started (`shoal worker --cloud`).
	CapCloud = "shoal.cloud"
	// CapKind names the kind of executor in the servers view (ServerKind*):
	// the HTTP API sets "agent" on HTTP agents; absent means a native worker.
	CapKind = "shoal.kind"
)

// Submit carries one task or a batch. A batch is all-or-nothing: if any task is
// invalid the whole batch is refused and nothing is written.
type Submit struct {
	Version uint16     `msgpack:"v"`
	Tasks   []TaskSpec `msgpack:"tasks"`
}

// SubmitAck answers Submit once every task is durable (fsync'd), or with Err.
type SubmitAck struct {
	IDs []uint64 `msgpack:"ids,omitempty"` // one per submitted task, in order
	Err *Error   `msgpack:"err,omitempty"`
}

// Task is a leased unit of work as an executor sees it.
type Task struct {
	// Encoded as a msgpack array (no field names): it travels by the
	// thousand in batches. New fields go at the end, with a protocol bump.
	_msgpack struct{} `msgpack:",as_array"`

	ID       uint64 `msgpack:"id"`
	Type     string `msgpack:"type"`
	Payload  []byte `msgpack:"payload"`
	Priority int32  `msgpack:"prio"`
	Attempt  int32  `msgpack:"attempt"` // 1 for the first execution
	// TimeoutMillis is the attempt's run timeout (0: none): the executor
	// runs the handler under a context with this deadline. The node
	// enforces it too, by revoking the lease (Grant.Cancel). Encoded as a
	// 6th element only when set (task_codec.go).
	TimeoutMillis int64 `msgpack:"timeout_ms,omitempty"`
}

// LoadReport is an executor's live load (S0.4). CPU, Mem and IO are fractions
// of capacity in [0,1]; InFlight counts tasks the executor holds. Disk (the
// fraction of its file system in use), Procs (processes on its server) and
// IP (its server's first non-loopback address) feed the servers view
// (S3.4); they are omitted when zero, so a report without them is the
// same bytes as before they existed.
type LoadReport struct {
	CPU      float64 `msgpack:"cpu"`
	Mem      float64 `msgpack:"mem"`
	IO       float64 `msgpack:"io"`
	InFlight int32   `msgpack:"inflight"`
	Disk     float64 `msgpack:"disk,omitempty"`
	Procs    int32   `msgpack:"procs,omitempty"`
	IP       string  `msgpack:"ip,omitempty"`
}

// Register announces an executor to a node (S2.9). The node answers Registered.
type Register struct {
	Version      uint16            `msgpack:"v"`
	ExecutorID   string            `msgpack:"executor"`
	Types        []string          `msgpack:"types"`
	Slots        int32             `msgpack:"slots"`
	Capabilities map[string]string `msgpack:"caps,omitempty"`
	Token        string            `msgpack:"token,omitempty"`
	// Incarnation identifies one run of the executor (random, non-zero,
	// fixed for its lifetime). A Register repeating the incarnation the
	// node already has (an answer was lost or slow) keeps the executor's
	// leases; a new one, or 0, means the executor restarted and its leased
	// tasks are failed and queued again.
	Incarnation uint64 `msgpack:"inc,omitempty"`
}

// Registered answers Register.
type Registered struct {
	LeaseTTLMillis  int64  `msgpack:"lease_ttl_ms"`
	HeartbeatMillis int64  `msgpack:"heartbeat_ms"`
	Err             *Error `msgpack:"err,omitempty"`
}

// Result is the outcome of one execution of a leased task.
type Result struct {
	// Encoded as a msgpack array (no field names): it travels by the
	// thousand in batches. New fields go at the end, with a protocol bump.
	_msgpack struct{} `msgpack:",as_array"`

	TaskID  uint64 `msgpack:"id"`
	Attempt int32  `msgpack:"attempt"`
	OK      bool   `msgpack:"ok"`
	Output  []byte `msgpack:"out,omitempty"`
	Error   string `msgpack:"error,omitempty"`
	// Permanent marks a failure that retrying cannot fix.
	Permanent bool  `msgpack:"permanent,omitempty"`
	RunNanos  int64 `msgpack:"run_ns"`
}

// Pull is an executor's request for work. It also reports results, renews the
// leases the executor still holds, and carries its load (one round trip per
// batch). The node answers with Grant, possibly later (long poll) when no work
// is queued.
type Pull struct {
	ExecutorID string     `msgpack:"executor"`
	Load       LoadReport `msgpack:"load"`
	Free       int32      `msgpack:"free"` // slots free for new work right now
	Results    []Result   `msgpack:"results,omitempty"`
	Held       []uint64   `msgpack:"held,omitempty"` // leases still running
}

// Grant hands tasks to an executor, each under a lease of LeaseTTLMillis.
type Grant struct {
	Tasks          []Task   `msgpack:"tasks,omitempty"`
	Cancel         []uint64 `msgpack:"cancel,omitempty"` // leases the node revoked
	LeaseTTLMillis int64    `msgpack:"lease_ttl_ms"`
	Err            *Error   `msgpack:"err,omitempty"`
	// Sleep tells the executor to stop pulling and only heartbeat, every
	// HeartbeatMillis (S2.10). Any later Grant without Sleep wakes it.
	Sleep           bool  `msgpack:"sleep,omitempty"`
	HeartbeatMillis int64 `msgpack:"heartbeat_ms,omitempty"`
}

// Heartbeat renews an executor's leases without asking for work.
type Heartbeat struct {
	ExecutorID string     `msgpack:"executor"`
	Load       LoadReport `msgpack:"load"`
	Held       []uint64   `msgpack:"held,omitempty"`
	Results    []Result   `msgpack:"results,omitempty"`
	// Unhealthy, when set, is the executor's own health check failing (the
	// reason); the node's supervisor evicts it (S2.7).
	Unhealthy string `msgpack:"unhealthy,omitempty"`
}

// Wait asks for the outcomes of tasks; the node answers Outcomes when every
// listed task is terminal or when TimeoutMillis passes (then with the states
// known so far).
type Wait struct {
	IDs           []uint64 `msgpack:"ids"`
	TimeoutMillis int64    `msgpack:"timeout_ms"`
}

// Outcome is a task's state and, when terminal, its result.
type Outcome struct {
	TaskID   uint64    `msgpack:"id"`
	State    TaskState `msgpack:"state"`
	Output   []byte    `msgpack:"out,omitempty"`
	Error    string    `msgpack:"error,omitempty"`
	Attempts int32     `msgpack:"attempts"`
	// AliasOf is set when this task was a duplicate: the id whose execution
	// produced the result.
	AliasOf uint64 `msgpack:"alias_of,omitempty"`
	// Reason explains a task that is not terminal and cannot progress,
	// e.g. no registered executor satisfies its requirements.
	Reason string `msgpack:"reason,omitempty"`
}

// Outcomes answers Wait and Lookup.
type Outcomes struct {
	Outcomes []Outcome `msgpack:"outcomes"`
	Err      *Error    `msgpack:"err,omitempty"`
}

// Cancel asks the node to cancel tasks. Answered by Outcomes with each task's
// state after the request.
type Cancel struct {
	IDs []uint64 `msgpack:"ids"`
}

// StatusRequest asks a node for its Status.
type StatusRequest struct{}

// ClassStatus is one dispatch class's view.
type ClassStatus struct {
	Class   string `msgpack:"class"`
	Queued  int64  `msgpack:"queued"`
	Standby int64  `msgpack:"standby"`
	// Paused: nothing of this class is granted (Pause).
	Paused bool `msgpack:"paused,omitempty"`
}

// ExecutorStatus is one attached executor as the dispatcher sees it.
type ExecutorStatus struct {
	ID       string     `msgpack:"id"`
	Slots    int32      `msgpack:"slots"`
	Leases   int32      `msgpack:"leases"`
	Load     LoadReport `msgpack:"load"`
	LastSeen int64      `msgpack:"last_seen_unix_ms"`
	// State is active, sleeping, draining or failed (S2.10, S2.7); empty
	// from nodes before supervision (read it as active).
	State string `msgpack:"state,omitempty"`
	// IdleSince is when it last held no lease (unix ms; 0: busy).
	IdleSince int64 `msgpack:"idle_since_unix_ms,omitempty"`
	// Unhealthy is the reason its last heartbeat gave for failing its own
	// health check (empty: healthy).
	Unhealthy string `msgpack:"unhealthy,omitempty"`
	// Launched marks an executor process the node started (--executors);
	// Restarts counts its restarts.
	Launched bool  `msgpack:"launched,omitempty"`
	Restarts int32 `msgpack:"restarts,omitempty"`
	// BacklogMillis is the estimated run time of the tasks it holds, per
	// slot (backlog-aware placement).
	BacklogMillis int64 `msgpack:"backlog_ms,omitempty"`
	// Cloud marks an executor started by the cloud actor.
	Cloud bool `msgpack:"cloud,omitempty"`
	// Kind is its CapKind capability ("agent" for an HTTP agent; empty:
	// a native worker).
	Kind string `msgpack:"kind,omitempty"`
}

// Executor states shown in status.
const (
	ExecActive   = "active"
	ExecSleeping = "sleeping"
	ExecDraining = "draining"
	ExecFailed   = "failed"
	// ExecRestarting is a process the node launched, waiting out its
	// restart backoff.
	ExecRestarting = "restarting"
)

// Alert is raised by a node's supervisor when an executor keeps failing
// (docs/supervision.md). Sinks receive it as JSON.
type Alert struct {
	At       int64  `msgpack:"at_unix_ms" json:"at_unix_ms"`
	Node     string `msgpack:"node" json:"node"`
	Executor string `msgpack:"executor" json:"executor"`
	Kind     string `msgpack:"kind" json:"kind"` // "restart_limit", "health_limit", "actor_stopped"
	Message  string `msgpack:"message" json:"message"`
	Failures int32  `msgpack:"failures" json:"failures"` // failures within the window
}

// Drain asks a node to stop granting work to an executor and let its
// leases finish (Undo: make it active again). Send to ActorDispatch;
// answered by DrainAck.
type Drain struct {
	ExecutorID string `msgpack:"executor"`
	Undo       bool   `msgpack:"undo,omitempty"`
}

// DrainAck answers Drain: the executor's state and leases after it.
type DrainAck struct {
	State  string `msgpack:"state"`
	Leases int32  `msgpack:"leases"`
	Err    *Error `msgpack:"err,omitempty"`
}

// UnplaceableStatus is a task type and requirement shape that no registered
// executor satisfies, with the tasks set aside for it.
type UnplaceableStatus struct {
	Type         string `msgpack:"type"`
	Requirements string `msgpack:"requirements"`
	Tasks        int64  `msgpack:"tasks"`
	SinceUnixMs  int64  `msgpack:"since_unix_ms"`
	// Refused says which dispatch filter refused which executors, e.g.
	// "type refused 3 (a, b, c); capabilities refused 1 (d)".
	Refused string `msgpack:"refused,omitempty"`
}

// CloudExecutorStatus is one executor the cloud actor provisioned.
type CloudExecutorStatus struct {
	ID    string `msgpack:"id"`
	State string `msgpack:"state"` // provisioning, ready, releasing
	// Reason is why it was provisioned (the demand it answers).
	Reason string `msgpack:"reason,omitempty"`
	Since  int64  `msgpack:"since_unix_ms"`
}

// MemberStatus is one cluster member as the answering node sees it.
type MemberStatus struct {
	Name    string            `msgpack:"name"`
	Gossip  string            `msgpack:"gossip"`
	Remote  string            `msgpack:"remote"`
	Queued  [NumClasses]int64 `msgpack:"queued"`
	Standby int64             `msgpack:"standby"`
	LoadAt  int64             `msgpack:"load_at_unix_ms"` // 0: no load report yet
	// Partitions is how many of the cluster's partitions it owns.
	Partitions int32   `msgpack:"partitions,omitempty"`
	Executors  int32   `msgpack:"executors,omitempty"`
	FreeSlots  int32   `msgpack:"free_slots,omitempty"`
	DrainRate  float64 `msgpack:"drain_rate,omitempty"` // tasks finished per second
}

// Status is a node's counters and queues.
type Status struct {
	Node      string           `msgpack:"node"`
	Classes   []ClassStatus    `msgpack:"classes"`
	Executors []ExecutorStatus `msgpack:"executors"`
	Counters  map[string]int64 `msgpack:"counters"`
	Members   []MemberStatus   `msgpack:"members,omitempty"`
	// Alerts are the supervisor's latest alerts, oldest first.
	Alerts []Alert `msgpack:"alerts,omitempty"`
	// Unplaceable lists tasks set aside because no registered executor
	// satisfies their requirements.
	Unplaceable []UnplaceableStatus `msgpack:"unplaceable,omitempty"`
	// Cloud lists the cloud actor's executors (counters under cloud_*).
	Cloud []CloudExecutorStatus `msgpack:"cloud,omitempty"`
	// DigestFields is the node's intake digest configuration (per task
	// type, the payload fields that identify a duplicate): an SDK routing
	// submissions to partition owners digests tasks as the node does.
	DigestFields map[string][]string `msgpack:"digest_fields,omitempty"`
	// PausedTypes and PausedClasses are what Pause holds back from
	// dispatch (sorted; classes by name).
	PausedTypes   []string `msgpack:"paused_types,omitempty"`
	PausedClasses []string `msgpack:"paused_classes,omitempty"`
}

// Pause holds task types and priority classes back from dispatch: their
// tasks stay durable and queued, and nothing of them is granted until a
// Pause with Resume set lets them go. Leases already granted run on. The
// paused set is durable (the store keeps it) and survives a restart. Send
// to ActorDispatch; answered by PauseAck. Classes are "high", "normal" or
// "low".
type Pause struct {
	Types   []string `msgpack:"types,omitempty"`
	Classes []string `msgpack:"classes,omitempty"`
	Resume  bool     `msgpack:"resume,omitempty"`
}

// PauseAck answers Pause once the new paused set is durable: the whole set
// after the request.
type PauseAck struct {
	Types   []string `msgpack:"types,omitempty"`
	Classes []string `msgpack:"classes,omitempty"`
	Err     *Error   `msgpack:"err,omitempty"`
}

// NodeLoad is the small load report a node piggybacks on gossip (latest
// wins per node): what peers need to place and steal work.
type NodeLoad struct {
	Node      string            `msgpack:"node"`
	Queued    [NumClasses]int64 `msgpack:"queued"`
	Standby   int64             `msgpack:"standby"`
	FreeSlots int32             `msgpack:"free_slots"`
	DrainRate float64           `msgpack:"drain_rate"` // tasks finished per second
	At        int64             `msgpack:"at_unix_ms"`
	Executors int32             `msgpack:"executors,omitempty"` // attached executors
}
