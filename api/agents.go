package api

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/agent"
	"github.com/shoalrt/shoal/messages"
)

// HTTP agents (S3.1): each registered agent has a relay actor on the node
// (actors/agent) that speaks the dispatcher's executor protocol for it.

var agentID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// MaxSlots bounds an agent's declared concurrency.
const MaxSlots = 4096

type registerIn struct {
	ID           string            `json:"id"`
	Types        []string          `json:"types"`
	Slots        int32             `json:"slots"`
	Capabilities map[string]string `json:"capabilities,omitempty"`
	// Token is the executor token (shoal node --token), as native workers send.
	Token string `json:"token,omitempty"`
}

type registeredOut struct {
	ID          string `json:"id"`
	LeaseTTLMS  int64  `json:"lease_ttl_ms"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
}

// ResultIn is the outcome of one execution an agent reports.
type ResultIn struct {
	ID           uint64  `json:"id"`
	Attempt      int32   `json:"attempt"`
	OK           bool    `json:"ok"`
	Output       *string `json:"output,omitempty"`
	OutputBase64 string  `json:"output_base64,omitempty"`
	Error        string  `json:"error,omitempty"`
	Permanent    bool    `json:"permanent,omitempty"`
	RunMS        float64 `json:"run_ms,omitempty"`
}

type leaseIn struct {
	// Max bounds the tasks in the answer. Default 1.
	Max       int        `json:"max,omitempty"`
	TimeoutMS *int64     `json:"timeout_ms,omitempty"`
	Load      *LoadOut   `json:"load,omitempty"`
	Results   []ResultIn `json:"results,omitempty"`
}

// TaskOut is a leased task as an agent sees it.
type TaskOut struct {
	ID            uint64  `json:"id"`
	Type          string  `json:"type"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 string  `json:"payload_base64,omitempty"`
	Priority      int32   `json:"priority"`
	Attempt       int32   `json:"attempt"`
	// TimeoutMS is the attempt's run timeout (0: none): past it the node
	// fails the attempt and lists the task under cancel.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

type leaseOut struct {
	Tasks  []TaskOut `json:"tasks"`
	Cancel []uint64  `json:"cancel"`
}

type heartbeatIn struct {
	Load    *LoadOut   `json:"load,omitempty"`
	Held    []uint64   `json:"held,omitempty"`
	Results []ResultIn `json:"results,omitempty"`
}

type cancelOut struct {
	Cancel []uint64 `json:"cancel"`
}

// POST /v1/agents
func (s *Server) registerAgent(w http.ResponseWriter, r *http.Request) {
	var in registerIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	switch {
	case !agentID.MatchString(in.ID):
		writeError(w, messages.Errorf(messages.CodeInvalid, "id %q: 1-128 characters of letters, digits and . _ : - (first a letter or digit)", in.ID))
		return
	case in.Slots <= 0 || in.Slots > MaxSlots:
		writeError(w, messages.Errorf(messages.CodeInvalid, "slots %d: must be in [1, %d]", in.Slots, MaxSlots))
		return
	}
	for i, t := range in.Types {
		if t == "" {
			writeError(w, messages.Errorf(messages.CodeInvalid, "types[%d] is empty", i))
			return
		}
	}
	pid, e := s.relay(r.Context(), in.ID, true)
	if e != nil {
		writeError(w, e)
		return
	}
	reply := make(chan *messages.Registered, 1)
	s.conn.System.Root.Send(pid, agent.RegisterCall{Reply: reply, Register: &messages.Register{
		Version: messages.ProtocolVersion, ExecutorID: in.ID, Types: in.Types, Slots: in.Slots,
		Capabilities: agentCaps(in.Capabilities), Token: in.Token,
	}})
	select {
	case reg := <-reply:
		if reg.Err != nil {
			writeError(w, reg.Err)
			return
		}
		s.mu.Lock()
		if r := s.agents[in.ID]; r != nil {
			r.ttl = time.Duration(reg.LeaseTTLMillis) * time.Millisecond
		}
		s.mu.Unlock()
		s.log.Info("http agent registered", "agent", in.ID, "slots", in.Slots, "types", in.Types)
		writeJSON(w, http.StatusOK, registeredOut{ID: in.ID, LeaseTTLMS: reg.LeaseTTLMillis, HeartbeatMS: reg.HeartbeatMillis})
	case <-time.After(s.cfg.AskTimeout):
		writeError(w, messages.Errorf(messages.CodeUnavailable, "dispatcher did not answer the registration within %v", s.cfg.AskTimeout))
	case <-r.Context().Done():
	}
}

// relayEntry is one agent's relay actor.
type relayEntry struct {
	pid   *actor.PID
	ttl   time.Duration // the lease TTL, from the registration
	since time.Time     // when the relay was spawned
}

// relay returns the relay actor of agent id, spawning it when create is set.
func (s *Server) relay(ctx context.Context, id string, create bool) (*actor.PID, *messages.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.agents[id]; r != nil {
		return r.pid, nil
	}
	if !create {
		return nil, messages.Errorf(messages.CodeUnknownExecutor, "agent %q is not registered with this node; POST /v1/agents first", id)
	}
	if len(s.agents) >= s.cfg.MaxAgents {
		s.mu.Unlock()
		s.sweep(ctx)
		s.mu.Lock()
		if r := s.agents[id]; r != nil {
			return r.pid, nil
		}
		if len(s.agents) >= s.cfg.MaxAgents {
			return nil, messages.Errorf(messages.CodeOverloaded, "this node relays %d live HTTP agents already (the limit)", len(s.agents))
		}
	}
	p := s.conn.System.Root.Spawn(agent.Props(id, agent.Deps{Dispatch: s.conn.PID(messages.ActorDispatch), Transport: s.conn.Transport, Logger: s.log}))
	s.agents[id] = &relayEntry{pid: p, since: time.Now()}
	return p, nil
}

// sweep stops the relays of agents the dispatcher no longer knows (gone
// silent past their lease TTL, or never registered), so agents that come
// and go under fresh ids do not use up MaxAgents. A relay younger than
// AskTimeout is spared: its registration may be on its way.
func (s *Server) sweep(ctx context.Context) {
	st, err := s.client.Status(ctx)
	if err != nil {
		s.log.Warn("http agent sweep: no status", "err", err)
		return
	}
	known := map[string]bool{}
	for _, e := range st.Executors {
		known[e.ID] = true
	}
	cutoff := time.Now().Add(-s.cfg.AskTimeout)
	var stop []*actor.PID
	s.mu.Lock()
	for id, r := range s.agents {
		if !known[id] && r.since.Before(cutoff) {
			stop = append(stop, r.pid)
			delete(s.agents, id)
		}
	}
	s.mu.Unlock()
	for _, p := range stop {
		s.conn.System.Root.Stop(p)
	}
	if len(stop) > 0 {
		s.log.Info("http agent relays swept", "stopped", len(stop))
	}
}

func resultsOf(in []ResultIn) ([]messages.Result, *messages.Error) {
	out := make([]messages.Result, len(in))
	for i, r := range in {
		b, err := bytesOf(r.Output, r.OutputBase64)
		if err != nil {
			return nil, messages.Errorf(messages.CodeInvalid, "results[%d]: %v", i, err)
		}
		if r.ID == 0 || r.Attempt <= 0 {
			return nil, messages.Errorf(messages.CodeInvalid, "results[%d]: id and attempt (from the leased task) are required", i)
		}
		out[i] = messages.Result{TaskID: r.ID, Attempt: r.Attempt, OK: r.OK, Output: b, Error: r.Error,
			Permanent: r.Permanent, RunNanos: int64(r.RunMS * 1e6)}
		if !r.OK && out[i].Error == "" {
			out[i].Error = "failed (the agent gave no error message)"
		}
	}
	return out, nil
}

func loadOf(l *LoadOut) messages.LoadReport {
	if l == nil {
		return messages.LoadReport{}
	}
	clamp := func(x float64) float64 { return min(max(x, 0), 1) }
	out := messages.LoadReport{CPU: clamp(l.CPU), Mem: clamp(l.Mem), IO: clamp(l.IO), Disk: clamp(l.Disk), Procs: max(l.Procs, 0)}
	if len(l.IP) <= 64 {
		out.IP = l.IP
	}
	return out
}

func tasksOut(ts []messages.Task) []TaskOut {
	out := make([]TaskOut, len(ts))
	for i, t := range ts {
		out[i] = TaskOut{ID: t.ID, Type: t.Type, Priority: t.Priority, Attempt: t.Attempt, TimeoutMS: t.TimeoutMillis}
		out[i].Payload, out[i].PayloadBase64 = textOrBase64(t.Payload)
		if out[i].Payload == nil && out[i].PayloadBase64 == "" {
			empty := ""
			out[i].Payload = &empty
		}
	}
	return out
}

// POST /v1/agents/{id}/lease: report results, then wait (bounded) for tasks.
func (s *Server) lease(w http.ResponseWriter, r *http.Request) {
	var in leaseIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	d, e := s.waitFor(in.TimeoutMS)
	if e != nil {
		writeError(w, e)
		return
	}
	if in.Max < 0 || in.Max > MaxSlots {
		writeError(w, messages.Errorf(messages.CodeInvalid, "max %d: must be in [0, %d] (0: 1)", in.Max, MaxSlots))
		return
	}
	results, e := resultsOf(in.Results)
	if e != nil {
		writeError(w, e)
		return
	}
	pid, e := s.relay(r.Context(), r.PathValue("id"), false)
	if e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	if re := s.agents[r.PathValue("id")]; re != nil && re.ttl > 0 {
		// A parked lease renews nothing at the dispatcher: answer well
		// within the lease TTL, so a polling agent is never expired.
		d = min(d, re.ttl/2)
	}
	s.mu.Unlock()
	root := s.conn.System.Root
	ch := make(chan agent.Answer, 1)
	wt := &agent.Waiter{Token: ch, Max: max(in.Max, 1)}
	root.Send(pid, agent.LeaseCall{Waiter: wt, Load: withIP(loadOf(in.Load), r), Results: results})
	timer := time.NewTimer(d)
	defer timer.Stop()
	var a agent.Answer
	select {
	case a = <-ch:
	case <-timer.C:
		a = s.withdraw(pid, wt, ch)
	case <-r.Context().Done():
		// The agent left: whatever was handed over goes back to the relay.
		if a = s.withdraw(pid, wt, ch); len(a.Tasks) > 0 {
			root.Send(pid, agent.ReturnCall{Tasks: a.Tasks})
		}
		return
	}
	if a.Err != nil {
		writeError(w, a.Err)
		return
	}
	writeJSON(w, http.StatusOK, leaseOut{Tasks: tasksOut(a.Tasks), Cancel: nonNil(a.Cancel)})
}

// withdraw ends a lease call that gave up: either the relay drops it, or
// it was answered just before and the answer is in ch.
func (s *Server) withdraw(pid *actor.PID, wt *agent.Waiter, ch chan agent.Answer) agent.Answer {
	reply := make(chan bool, 1)
	s.conn.System.Root.Send(pid, agent.WithdrawCall{Waiter: wt, Reply: reply})
	select {
	case dropped := <-reply:
		if dropped {
			return agent.Answer{}
		}
		return <-ch
	case a := <-ch:
		return a
	case <-time.After(s.cfg.AskTimeout):
		return agent.Answer{Err: messages.Errorf(messages.CodeUnavailable, "agent relay did not answer")}
	}
}

func nonNil(ids []uint64) []uint64 {
	if ids == nil {
		return []uint64{}
	}
	return ids
}

// POST /v1/agents/{id}/heartbeat: renew leases, report results; answers the
// leases the node revoked (cancelled tasks the agent should stop).
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	var in heartbeatIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	// held absent: not reported, nothing is judged; [] : holds nothing.
	s.beat(w, r, in.Load, in.Held, in.Results)
}

type completeIn struct {
	Results []ResultIn `json:"results"`
}

// POST /v1/agents/{id}/complete: report results (renews leases too).
func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	var in completeIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if len(in.Results) == 0 {
		writeError(w, messages.Errorf(messages.CodeInvalid, "results: give at least one result"))
		return
	}
	s.beat(w, r, nil, nil, in.Results)
}

func (s *Server) beat(w http.ResponseWriter, r *http.Request, load *LoadOut, held []uint64, in []ResultIn) {
	results, e := resultsOf(in)
	if e != nil {
		writeError(w, e)
		return
	}
	pid, e := s.relay(r.Context(), r.PathValue("id"), false)
	if e != nil {
		writeError(w, e)
		return
	}
	reply := make(chan agent.HeartbeatReply, 1)
	s.conn.System.Root.Send(pid, agent.HeartbeatCall{Load: withIP(loadOf(load), r), Held: held, Results: results, Reply: reply})
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.AskTimeout)
	defer cancel()
	select {
	case hr := <-reply:
		if hr.Err != nil {
			writeError(w, hr.Err)
			return
		}
		writeJSON(w, http.StatusOK, cancelOut{Cancel: nonNil(hr.Cancel)})
	case <-ctx.Done():
		writeError(w, messages.Errorf(messages.CodeUnavailable, "agent relay did not answer: %v", ctx.Err()))
	}
}
