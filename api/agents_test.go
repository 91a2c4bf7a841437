package api_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/node"
)

type task struct {
	ID            uint64  `json:"id"`
	Type          string  `json:"type"`
	Payload       *string `json:"payload"`
	PayloadBase64 string  `json:"payload_base64"`
	Priority      int32   `json:"priority"`
	Attempt       int32   `json:"attempt"`
}

type leased struct {
	Tasks  []task   `json:"tasks"`
	Cancel []uint64 `json:"cancel"`
}

type registered struct {
	ID          string `json:"id"`
	LeaseTTLMS  int64  `json:"lease_ttl_ms"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
}

func (e *env) register(id string, types ...string) registered {
	e.t.Helper()
	var r registered
	if code := e.do("POST", "/v1/agents", map[string]any{"id": id, "types": types, "slots": 2, "token": "exec-tok"}, &r); code != 200 {
		e.t.Fatalf("register %s: %d", id, code)
	}
	return r
}

// leaseUntil leases until the agent gets a task (bounded).
func (e *env) leaseUntil(id string, body map[string]any) leased {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var l leased
		if code := e.do("POST", "/v1/agents/"+id+"/lease", body, &l); code != 200 {
			e.t.Fatalf("lease %s: %d", id, code)
		}
		if len(l.Tasks) > 0 {
			return l
		}
		delete(body, "results") // reported once
	}
	e.t.Fatalf("agent %s got no task within 30 s", id)
	return leased{}
}

func result(t task, out string) map[string]any {
	return map[string]any{"id": t.ID, "attempt": t.Attempt, "ok": true, "output": out, "run_ms": 1.5}
}

func withExecToken(c *node.Config) { c.Token = "exec-tok" }

func TestAgentRunsTasksThroughTheDispatcher(t *testing.T) {
	e := start(t, withExecToken, nil)
	reg := e.register("py-1", "upper")
	if reg.LeaseTTLMS != 15_000 || reg.HeartbeatMS != 3_000 {
		t.Fatalf("registered %+v, want the dispatcher's lease TTL and heartbeat", reg)
	}
	idl := e.submit(map[string]any{"type": "upper", "payload": "abc"}, map[string]any{"type": "upper", "payload": "def"})
	got := map[uint64]task{}
	var results []map[string]any
	for len(got) < 2 {
		l := e.leaseUntil("py-1", map[string]any{"max": 5, "timeout_ms": 2000, "results": results})
		results = nil
		for _, tk := range l.Tasks {
			if tk.Type != "upper" || tk.Attempt != 1 || tk.Payload == nil {
				t.Fatalf("leased %+v", tk)
			}
			got[tk.ID] = tk
			results = append(results, result(tk, strings.ToUpper(*tk.Payload)))
		}
	}
	// Report through complete (lease results are covered by the loop above
	// when tasks came one at a time).
	var c struct {
		Cancel []uint64 `json:"cancel"`
	}
	if code := e.do("POST", "/v1/agents/py-1/complete", map[string]any{"results": results}, &c); code != 200 {
		t.Fatalf("complete: %d", code)
	}
	out := e.waitDone(idl...)
	if *out[0].Output != "ABC" || *out[1].Output != "DEF" {
		t.Fatalf("outcomes %+v", out)
	}
	var st api.StatusOut
	e.do("GET", "/v1/status", nil, &st)
	if !slices.ContainsFunc(st.Executors, func(x api.ExecutorOut) bool { return x.ID == "py-1" && x.Slots == 2 && x.State == "active" }) {
		t.Fatalf("status executors %+v, want py-1 with 2 slots", st.Executors)
	}
}

func TestAgentRoutesRefuseBadInput(t *testing.T) {
	e := start(t, withExecToken, nil)
	e.wantError(400, "invalid", "POST", "/v1/agents", map[string]any{"id": "", "slots": 1})
	e.wantError(400, "invalid", "POST", "/v1/agents", map[string]any{"id": "bad id/x", "slots": 1})
	e.wantError(400, "invalid", "POST", "/v1/agents", map[string]any{"id": "a", "slots": 0, "token": "exec-tok"})
	e.wantError(400, "invalid", "POST", "/v1/agents", map[string]any{"id": "a", "slots": 1, "types": []string{""}})
	e.wantError(400, "invalid", "POST", "/v1/agents", `{"id": "a", "slots": 1, "token": "exec-tok", "x": 1}`)
	e.wantError(401, "unauthorized", "POST", "/v1/agents", map[string]any{"id": "a", "slots": 1, "token": "nope"})
	e.wantError(409, "unknown_executor", "POST", "/v1/agents/ghost/lease", map[string]any{})
	e.wantError(409, "unknown_executor", "POST", "/v1/agents/ghost/heartbeat", map[string]any{})
	e.wantError(409, "unknown_executor", "POST", "/v1/agents/ghost/complete", map[string]any{"results": []any{map[string]any{"id": 1, "attempt": 1, "ok": true}}})
	e.register("a", "t")
	e.wantError(400, "invalid", "POST", "/v1/agents/a/lease", map[string]any{"timeout_ms": -5})
	e.wantError(400, "invalid", "POST", "/v1/agents/a/lease", map[string]any{"max": -1})
	e.wantError(400, "invalid", "POST", "/v1/agents/a/complete", map[string]any{"results": []any{map[string]any{"id": 1, "ok": true}}})
	e.wantError(400, "invalid", "POST", "/v1/agents/a/complete", map[string]any{"results": []any{}})
	e.wantError(400, "invalid", "POST", "/v1/agents/a/complete", map[string]any{"results": []any{map[string]any{"id": 1, "attempt": 1, "output": "x", "output_base64": "eA=="}}})
	// A lease with nothing queued answers empty at its timeout.
	var l leased
	if code := e.do("POST", "/v1/agents/a/lease", map[string]any{"timeout_ms": 50}, &l); code != 200 || len(l.Tasks) != 0 || l.Cancel == nil {
		t.Fatalf("empty lease: %d %+v", code, l)
	}
}

// A vanished agent's leases expire like any executor's: the task runs again
// elsewhere, the late result is fenced off, and the agent must register again.
func TestAgentLeaseExpiryRequeues(t *testing.T) {
	e := start(t, func(c *node.Config) {
		withExecToken(c)
		c.Dispatch.LeaseTTL = 500 * time.Millisecond
		c.Dispatch.RetryBase = 10 * time.Millisecond
	}, nil)
	e.register("gone", "job")
	idl := e.submit(map[string]any{"type": "job", "payload": "p"})
	first := e.leaseUntil("gone", map[string]any{"timeout_ms": 200})
	if first.Tasks[0].ID != idl[0] || first.Tasks[0].Attempt != 1 {
		t.Fatalf("first lease %+v", first)
	}
	// "gone" says nothing more. Another agent takes the task over.
	e.register("next", "job")
	second := e.leaseUntil("next", map[string]any{"timeout_ms": 200})
	if second.Tasks[0].ID != idl[0] || second.Tasks[0].Attempt != 2 {
		t.Fatalf("second lease %+v, want the same task at attempt 2", second)
	}
	// The vanished agent wakes up: its result is stale, and it is told to
	// register again.
	e.wantError(409, "unknown_executor", "POST", "/v1/agents/gone/lease", map[string]any{
		"timeout_ms": 10_000, "results": []any{result(first.Tasks[0], "late")}})
	var c struct{}
	if code := e.do("POST", "/v1/agents/next/complete", map[string]any{"results": []any{result(second.Tasks[0], "fresh")}}, &c); code != 200 {
		t.Fatalf("complete: %d", code)
	}
	out := e.waitDone(idl...)
	if out[0].State != "done" || *out[0].Output != "fresh" || out[0].Attempts != 2 {
		t.Fatalf("outcome %+v, want done by the second agent at attempt 2", out[0])
	}
	var st api.StatusOut
	e.do("GET", "/v1/status", nil, &st)
	if st.Counters["expired"] != 1 {
		t.Fatalf("expired counter %d, want 1", st.Counters["expired"])
	}
}

func TestAgentHearsOfCancelledTasks(t *testing.T) {
	e := start(t, withExecToken, nil)
	e.register("c1", "job")
	idl := e.submit(map[string]any{"type": "job", "payload": "p"})
	l := e.leaseUntil("c1", map[string]any{"timeout_ms": 200})
	var out outcomes
	if code := e.do("POST", "/v1/tasks/cancel", map[string]any{"ids": idl}, &out); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var hb struct {
			Cancel []uint64 `json:"cancel"`
		}
		if code := e.do("POST", "/v1/agents/c1/heartbeat", map[string]any{"held": []uint64{l.Tasks[0].ID}}, &hb); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
		if slices.Contains(hb.Cancel, idl[0]) {
			if got := e.waitDone(idl...); got[0].State != "cancelled" {
				t.Fatalf("outcome %+v", got[0])
			}
			return
		}
		// The revocation reaches the relay with the dispatcher's next grant.
		var l2 leased
		e.do("POST", "/v1/agents/c1/lease", map[string]any{"timeout_ms": 100}, &l2)
		if slices.Contains(l2.Cancel, idl[0]) {
			return
		}
	}
	t.Fatal("the agent never heard of the cancellation")
}

// A task handed over in a lease response the agent never got is failed once
// the agent's heartbeats show it does not hold it, so it runs again.
func TestAgentLostLeaseResponseIsRetried(t *testing.T) {
	e := start(t, func(c *node.Config) { withExecToken(c); c.Dispatch.RetryBase = 10 * time.Millisecond }, nil)
	e.register("l1", "job")
	_ = e.submit(map[string]any{"type": "job", "payload": "p"})
	first := e.leaseUntil("l1", map[string]any{"timeout_ms": 200})
	var hb struct{}
	for range 2 { // the first heartbeat after the handover spares it
		if code := e.do("POST", "/v1/agents/l1/heartbeat", map[string]any{"held": []uint64{}}, &hb); code != 200 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	again := e.leaseUntil("l1", map[string]any{"timeout_ms": 200})
	if again.Tasks[0].ID != first.Tasks[0].ID || again.Tasks[0].Attempt != 2 {
		t.Fatalf("lease after a lost handover: %+v, want the task again at attempt 2", again)
	}
}

// Serve ends when its context does, cutting a parked lease short, and
// stops the agent relays.
func TestServeStopsWithParkedLease(t *testing.T) {
	e := start(t, withExecToken, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.api.Serve(ctx, ln) }()
	other := &env{t: t, url: "http://" + ln.Addr().String(), tok: e.tok}
	other.register("park", "job")
	leaseDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", other.url+"/v1/agents/park/lease", strings.NewReader(`{"timeout_ms": 60000}`))
		req.Header.Set("Authorization", "Bearer "+e.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			leaseDone <- -1
			return
		}
		resp.Body.Close()
		leaseDone <- resp.StatusCode
	}()
	// Wait until the lease is parked at the dispatcher (the executor shows).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st api.StatusOut
		other.do("GET", "/v1/status", nil, &st)
		if slices.ContainsFunc(st.Executors, func(x api.ExecutorOut) bool { return x.ID == "park" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agent never registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	select {
	case <-leaseDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the parked lease call was not cut short")
	}
}

// Agents that vanished for good do not use up MaxAgents: their relays are
// swept when the limit is reached; live agents are never swept.
func TestAgentRelaysOfVanishedAgentsAreSwept(t *testing.T) {
	e := start(t, func(c *node.Config) {
		withExecToken(c)
		c.Dispatch.LeaseTTL = 300 * time.Millisecond
	}, func(c *api.Config) { c.MaxAgents = 2; c.AskTimeout = 100 * time.Millisecond })
	e.register("a1", "t")
	e.register("a2", "t")
	// Both are live (registered just now): a third is refused.
	e.wantError(429, "overloaded", "POST", "/v1/agents", map[string]any{"id": "a3", "slots": 1, "token": "exec-tok"})
	// a2 keeps heartbeating, a1 vanishes; once a1 expires, a3 gets its place.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var hb struct{}
		if code := e.do("POST", "/v1/agents/a2/heartbeat", map[string]any{}, &hb); code != 200 {
			t.Fatalf("a2 heartbeat: %d", code)
		}
		var r registered
		code := e.do("POST", "/v1/agents", map[string]any{"id": "a3", "slots": 1, "token": "exec-tok"}, &r)
		if code == 200 {
			break
		}
		if code != 429 || time.Now().After(deadline) {
			t.Fatalf("register a3: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.wantError(409, "unknown_executor", "POST", "/v1/agents/a1/heartbeat", map[string]any{})
	var hb struct{}
	if code := e.do("POST", "/v1/agents/a2/heartbeat", map[string]any{}, &hb); code != 200 {
		t.Fatalf("live agent a2 was swept: %d", code)
	}
}

// TestDrainExecutor: POST /v1/executors/{id}/drain drains an attached
// executor (an HTTP agent here), status shows it, undo makes it active; an
// unknown executor is a 404.
func TestDrainExecutor(t *testing.T) {
	e := start(t, withExecToken, nil)
	if code := e.do("POST", "/v1/agents", map[string]any{"id": "d-1", "types": []string{"t"}, "slots": 1, "token": "exec-tok"}, nil); code != 200 {
		t.Fatalf("register: %d", code)
	}
	var out struct {
		ID, State string
		Leases    int32
	}
	if code := e.do("POST", "/v1/executors/d-1/drain", nil, &out); code != 200 || out.State != "draining" || out.ID != "d-1" {
		t.Fatalf("drain: %d %+v", code, out)
	}
	var st api.StatusOut
	e.do("GET", "/v1/status", nil, &st)
	if !slices.ContainsFunc(st.Executors, func(x api.ExecutorOut) bool { return x.ID == "d-1" && x.State == "draining" }) {
		t.Fatalf("status executors %+v, want d-1 draining", st.Executors)
	}
	if code := e.do("POST", "/v1/executors/d-1/drain", map[string]any{"undo": true}, &out); code != 200 || out.State != "active" {
		t.Fatalf("undo: %d %+v", code, out)
	}
	e.wantError(404, "not_found", "POST", "/v1/executors/nobody/drain", nil)
	e.wantError(400, "invalid", "POST", "/v1/executors/d-1/drain", map[string]any{"undo": "yes"})
}
