package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// TaskIn is one task of a submission.
type TaskIn struct {
	Type string `json:"type"`
	// Payload is a JSON string (taken as text) or any other JSON value
	// (taken as its JSON encoding).
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 string            `json:"payload_base64,omitempty"`
	Priority      *int32            `json:"priority,omitempty"` // default 50
	Requirements  map[string]string `json:"requirements,omitempty"`
	MaxAttempts   int32             `json:"max_attempts,omitempty"`
	// Size is the task's declared size (placement estimates); Pin names
	// the only executor that may run it (a planned allocation).
	Size float64 `json:"size,omitempty"`
	Pin  string  `json:"pin,omitempty"`
	// TimeoutMS bounds each attempt's run time (0: the type's default).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

type submitIn struct {
	Tasks []TaskIn `json:"tasks"`
}

type idsOut struct {
	IDs []uint64 `json:"ids"`
}

// OutcomeOut is a task's state and, when finished, its result.
type OutcomeOut struct {
	ID           uint64  `json:"id"`
	State        string  `json:"state"`
	Output       *string `json:"output,omitempty"`
	OutputBase64 string  `json:"output_base64,omitempty"`
	Error        string  `json:"error,omitempty"`
	Attempts     int32   `json:"attempts"`
	AliasOf      uint64  `json:"alias_of,omitempty"`
	Reason       string  `json:"reason,omitempty"`
}

func outcomeOut(o messages.Outcome) OutcomeOut {
	out := OutcomeOut{ID: o.TaskID, State: o.State.String(), Error: o.Error, Attempts: o.Attempts, AliasOf: o.AliasOf, Reason: o.Reason}
	out.Output, out.OutputBase64 = textOrBase64(o.Output)
	return out
}

func outcomesOut(os []messages.Outcome) []OutcomeOut {
	out := make([]OutcomeOut, len(os))
	for i, o := range os {
		out[i] = outcomeOut(o)
	}
	return out
}

// POST /v1/tasks: all or nothing, answered once every task is durable.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var in submitIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if len(in.Tasks) == 0 {
		writeError(w, messages.Errorf(messages.CodeInvalid, "tasks: give at least one task"))
		return
	}
	specs := make([]messages.TaskSpec, len(in.Tasks))
	for i, t := range in.Tasks {
		p, err := payloadOf(t.Payload, t.PayloadBase64)
		if err != nil {
			writeError(w, messages.TaskErrorf(messages.CodeInvalid, i, "%v", err))
			return
		}
		prio := messages.DefaultPriority
		if t.Priority != nil {
			prio = *t.Priority
		}
		specs[i] = messages.TaskSpec{Type: t.Type, Payload: p, Priority: prio, Requirements: t.Requirements, MaxAttempts: t.MaxAttempts,
			Size: t.Size, Pin: t.Pin, TimeoutMillis: t.TimeoutMS}
	}
	ids, err := s.client.SubmitBatch(r.Context(), specs)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusCreated, idsOut{IDs: ids})
}

// lookup asks the result hub for the tasks' current states without waiting.
func (s *Server) lookup(ids []uint64) ([]messages.Outcome, *messages.Error) {
	return s.waitHub(ids, 0)
}

// waitHub asks the result hub once: it answers when every task is terminal
// or, after d, with the states known then.
func (s *Server) waitHub(ids []uint64, d time.Duration) ([]messages.Outcome, *messages.Error) {
	res, err := s.conn.System.Root.RequestFuture(s.conn.PID(messages.ActorResults),
		&messages.Wait{IDs: ids, TimeoutMillis: d.Milliseconds()}, d+s.cfg.AskTimeout).Result()
	if err != nil {
		return nil, messages.Errorf(messages.CodeUnavailable, "result hub did not answer: %v", err)
	}
	res, err = s.conn.Unwrap(res)
	out, ok := res.(*messages.Outcomes)
	if err != nil || !ok {
		return nil, messages.Errorf(messages.CodeInternal, "result hub answered %T (%v)", res, err)
	}
	if out.Err != nil && out.Err.Code != messages.CodeTimeout {
		return nil, out.Err
	}
	return out.Outcomes, nil
}

// GET /v1/tasks/{id}
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	out, e := s.lookup([]uint64{id})
	if e != nil {
		writeError(w, e)
		return
	}
	if len(out) != 1 || out[0].State == messages.StateUnknown {
		writeError(w, messages.Errorf(messages.CodeNotFound, "task %d: no such task, or its result has expired", id))
		return
	}
	writeJSON(w, http.StatusOK, outcomeOut(out[0]))
}

type waitIn struct {
	IDs []uint64 `json:"ids"`
	// TimeoutMS bounds the wait (absent: the default; 0: answer at once).
	TimeoutMS *int64 `json:"timeout_ms,omitempty"`
}

type outcomesOutBody struct {
	Outcomes []OutcomeOut `json:"outcomes"`
	// Done is true when every task is terminal (done, dead or cancelled).
	Done bool `json:"done"`
}

func (s *Server) ids(ids []uint64) *messages.Error {
	if len(ids) == 0 || len(ids) > s.cfg.MaxIDs {
		return messages.Errorf(messages.CodeInvalid, "ids: give 1 to %d task ids, got %d", s.cfg.MaxIDs, len(ids))
	}
	if i := slices.Index(ids, 0); i >= 0 {
		return messages.Errorf(messages.CodeInvalid, "ids[%d]: task ids are positive", i)
	}
	return nil
}

// POST /v1/tasks/wait: a bounded long poll. It answers when every task is
// terminal or at the timeout with the states known then (done: false).
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	var in waitIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if e := s.ids(in.IDs); e != nil {
		writeError(w, e)
		return
	}
	d, e := s.waitFor(in.TimeoutMS)
	if e != nil {
		writeError(w, e)
		return
	}
	out, e := s.waitHub(in.IDs, d)
	if e != nil {
		writeError(w, e)
		return
	}
	done := len(out) == len(in.IDs)
	for _, o := range out {
		done = done && o.State.Terminal()
	}
	writeJSON(w, http.StatusOK, outcomesOutBody{Outcomes: outcomesOut(out), Done: done})
}

type cancelIn struct {
	IDs []uint64 `json:"ids"`
}

// POST /v1/tasks/cancel
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	var in cancelIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if e := s.ids(in.IDs); e != nil {
		writeError(w, e)
		return
	}
	out, err := s.client.Cancel(r.Context(), in.IDs...)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	done := true
	for _, o := range out {
		done = done && o.State.Terminal()
	}
	writeJSON(w, http.StatusOK, outcomesOutBody{Outcomes: outcomesOut(out), Done: done})
}

// StatusOut is the node's status as JSON.
type StatusOut struct {
	Node      string           `json:"node"`
	Classes   []ClassOut       `json:"classes"`
	Executors []ExecutorOut    `json:"executors"`
	Counters  map[string]int64 `json:"counters"`
	Members   []MemberOut      `json:"members,omitempty"`
	// Alerts are the supervisor's latest alerts (docs/supervision.md).
	Alerts []messages.Alert `json:"alerts,omitempty"`
	// Unplaceable lists tasks no registered executor can run; Cloud the
	// cloud executors (docs/supervision.md).
	Unplaceable []UnplaceableOut `json:"unplaceable,omitempty"`
	Cloud       []CloudOut       `json:"cloud,omitempty"`
	// DigestFields are, per task type, the payload fields that identify a
	// duplicate (shoal node --digest-fields).
	DigestFields map[string][]string `json:"digest_fields,omitempty"`
	// PausedTypes and PausedClasses are held back from dispatch (Pause).
	PausedTypes   []string `json:"paused_types,omitempty"`
	PausedClasses []string `json:"paused_classes,omitempty"`
}

// UnplaceableOut is one requirement shape nobody satisfies.
type UnplaceableOut struct {
	Type         string `json:"type"`
	Requirements string `json:"requirements"`
	Tasks        int64  `json:"tasks"`
	SinceMS      int64  `json:"since_unix_ms"`
	// Refused says which dispatch filter refused which executors.
	Refused string `json:"refused,omitempty"`
}

// CloudOut is one cloud executor.
type CloudOut struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	SinceMS int64  `json:"since_unix_ms"`
}

// ClassOut is one priority class.
type ClassOut struct {
	Class   string `json:"class"`
	Queued  int64  `json:"queued"`
	Standby int64  `json:"standby"`
	Paused  bool   `json:"paused,omitempty"`
}

// LoadOut is a load report (fractions 0..1 and tasks held). Disk, Procs
// and IP feed the servers view (servers.go); an agent that gives no IP is
// shown at the address its calls come from.
type LoadOut struct {
	CPU      float64 `json:"cpu"`
	Mem      float64 `json:"mem"`
	IO       float64 `json:"io"`
	InFlight int32   `json:"inflight"`
	Disk     float64 `json:"disk,omitempty"`
	Procs    int32   `json:"procs,omitempty"`
	IP       string  `json:"ip,omitempty"`
}

// ExecutorOut is one attached executor (native or HTTP agent).
type ExecutorOut struct {
	ID         string  `json:"id"`
	Slots      int32   `json:"slots"`
	Leases     int32   `json:"leases"`
	Load       LoadOut `json:"load"`
	LastSeenMS int64   `json:"last_seen_unix_ms"`
	// State is active, sleeping, draining, restarting or failed.
	State string `json:"state,omitempty"`
	// BacklogMS is its estimated backlog per slot; Cloud marks a cloud
	// executor.
	BacklogMS int64 `json:"backlog_ms,omitempty"`
	Cloud     bool  `json:"cloud,omitempty"`
	// IdleSinceMS is when it last held no lease (0: busy); Unhealthy the
	// reason its health check fails; Launched marks a process the node
	// started (--executors), restarted Restarts times.
	IdleSinceMS int64  `json:"idle_since_unix_ms,omitempty"`
	Unhealthy   string `json:"unhealthy,omitempty"`
	Launched    bool   `json:"launched,omitempty"`
	Restarts    int32  `json:"restarts,omitempty"`
}

// MemberOut is one cluster member.
type MemberOut struct {
	Name    string  `json:"name"`
	Gossip  string  `json:"gossip"`
	Remote  string  `json:"remote"`
	Queued  []int64 `json:"queued"`
	Standby int64   `json:"standby"`
	LoadAt  int64   `json:"load_at_unix_ms"`
	// Partitions it owns; Executors, FreeSlots and DrainRate (tasks
	// finished per second) from its last load report.
	Partitions int32   `json:"partitions,omitempty"`
	Executors  int32   `json:"executors,omitempty"`
	FreeSlots  int32   `json:"free_slots,omitempty"`
	DrainRate  float64 `json:"drain_rate,omitempty"`
}

// GET /v1/status
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.client.Status(r.Context())
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, StatusJSON(st))
}

// StatusJSON is a node's status as GET /v1/status answers it (snake_case
// fields): also what `shoal status --json` prints.
func StatusJSON(st *messages.Status) StatusOut {
	out := StatusOut{Node: st.Node, Counters: st.Counters, Classes: []ClassOut{}, Executors: []ExecutorOut{}, Alerts: st.Alerts, DigestFields: st.DigestFields,
		PausedTypes: st.PausedTypes, PausedClasses: st.PausedClasses}
	for _, c := range st.Classes {
		out.Classes = append(out.Classes, ClassOut(c))
	}
	for _, e := range st.Executors {
		out.Executors = append(out.Executors, ExecutorOut{ID: e.ID, Slots: e.Slots, Leases: e.Leases, Load: LoadOut(e.Load), LastSeenMS: e.LastSeen, State: e.State,
			BacklogMS: e.BacklogMillis, Cloud: e.Cloud, IdleSinceMS: e.IdleSince, Unhealthy: e.Unhealthy, Launched: e.Launched, Restarts: e.Restarts})
	}
	for _, u := range st.Unplaceable {
		out.Unplaceable = append(out.Unplaceable, UnplaceableOut{Type: u.Type, Requirements: u.Requirements, Tasks: u.Tasks, SinceMS: u.SinceUnixMs, Refused: u.Refused})
	}
	for _, c := range st.Cloud {
		out.Cloud = append(out.Cloud, CloudOut{ID: c.ID, State: c.State, Reason: c.Reason, SinceMS: c.Since})
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, MemberOut{Name: m.Name, Gossip: m.Gossip, Remote: m.Remote, Queued: m.Queued[:], Standby: m.Standby, LoadAt: m.LoadAt,
			Partitions: m.Partitions, Executors: m.Executors, FreeSlots: m.FreeSlots, DrainRate: m.DrainRate})
	}
	return out
}
