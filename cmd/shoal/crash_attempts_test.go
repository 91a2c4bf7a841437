package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalrt/shoal/store/pgtest"
)

// Attempts interrupted by the node's death count (issue 15). A real node
// process is killed with SIGKILL while an HTTP agent (this test, speaking
// only HTTP: no second protoactor remote here) holds a task's lease: the
// task granted again after the restart is its second attempt and reports
// attempts 2; and a task whose every run kills the node (the agent kills
// the node as soon as it is granted the task, as a task run by an
// in-process worker may) is dead after max_attempts starts instead of
// running forever.
func TestCrashCountsInterruptedAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	testCrashCountsInterruptedAttempts(t, func(*testing.T) storeChoice { return pebbleChoice{} })
}

// TestCrashCountsInterruptedAttemptsPostgres is the same on PostgreSQL,
// where the starts are committed to the store before their grants.
func TestCrashCountsInterruptedAttemptsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	pg := pgtest.Start(t)
	testCrashCountsInterruptedAttempts(t, func(t *testing.T) storeChoice { return postgresChoice{url: pg.NewDatabase(t)} })
}

func testCrashCountsInterruptedAttempts(t *testing.T, choose func(*testing.T) storeChoice) {
	t.Run("running at the kill", func(t *testing.T) {
		h := newAttemptsNode(t, choose(t))
		h.start()
		id := h.submit("hold", 3)
		if tk := h.lease("a1"); tk.ID != id || tk.Attempt != 1 {
			t.Fatalf("first lease: %+v, want task %d attempt 1", tk, id)
		}
		h.node.kill() // the agent still runs attempt 1
		h.start()
		tk := h.lease("a2")
		if tk.ID != id || tk.Attempt != 2 {
			t.Fatalf("after the kill: %+v, want task %d attempt 2 (the interrupted run counts)", tk, id)
		}
		h.complete("a2", tk)
		if o := h.get(id); o.State != "done" || o.Attempts < 2 {
			t.Fatalf("task %d ran twice: %+v, want done with attempts ≥ 2", id, o)
		}
		h.node.stop()
	})
	t.Run("kills its node each time", func(t *testing.T) {
		h := newAttemptsNode(t, choose(t))
		h.start()
		const max = 3
		id := h.submit("crash", max)
		var seen []int32
		for life := 1; ; life++ {
			if life > max+2 {
				t.Fatalf("task %d still not dead after %d node lives (attempts seen %v)", id, life-1, seen)
			}
			if life > 1 {
				h.start()
			}
			tk, ok := h.leaseOr(fmt.Sprintf("k%d", life), func() bool { return h.get(id).State == "dead" })
			if !ok {
				if o := h.get(id); o.Attempts != max || len(seen) != max {
					t.Fatalf("dead task %d: %+v after runs %v; want attempts %d after %d runs", id, o, seen, max, max)
				}
				break
			}
			if tk.ID != id {
				t.Fatalf("life %d: leased %+v, want task %d", life, tk, id)
			}
			seen = append(seen, tk.Attempt)
			h.node.kill() // the task's run kills the node
		}
		for i, a := range seen {
			if a != int32(i+1) {
				t.Fatalf("attempts granted %v, want 1, 2, 3", seen)
			}
		}
		h.node.stop()
	})
}

// attemptsNode is a `shoal node --http` process on a fixed data directory
// and addresses, restarted as the test needs.
type attemptsNode struct {
	t          *testing.T
	tmp        string
	args       []string
	base       string
	node       *proc
	lives      int
	httpClient *http.Client
}

func newAttemptsNode(t *testing.T, sc storeChoice) *attemptsNode {
	tmp := t.TempDir()
	httpAddr := freeAddr(t)
	t.Logf("logs in %s", tmp)
	args := append([]string{"node"}, sc.args(tmp)...)
	return &attemptsNode{t: t, tmp: tmp, base: "http://" + httpAddr,
		args:       append(args, "--listen", freeAddr(t), "--http", httpAddr, "--lease-ttl", "30s", "--log-level", "info"),
		httpClient: &http.Client{Timeout: 30 * time.Second}}
}

// start starts the node and waits until its HTTP API answers.
func (h *attemptsNode) start() {
	h.t.Helper()
	h.lives++
	h.node = startProc(h.t, filepath.Join(h.tmp, fmt.Sprintf("node%d.log", h.lives)), "listening on", h.args...)
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := h.httpClient.Get(h.base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(end) {
			h.t.Fatalf("node HTTP API not up after 30 s; see %s", h.tmp)
		}
	}
}

func (h *attemptsNode) call(method, path string, in, out any) int {
	h.t.Helper()
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			h.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, h.base+path, &body)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.httpClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			h.t.Fatalf("%s %s: status %d, decode: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

func (h *attemptsNode) submit(typ string, maxAttempts int) uint64 {
	h.t.Helper()
	var out struct {
		IDs []uint64 `json:"ids"`
	}
	in := map[string]any{"tasks": []any{map[string]any{"type": typ, "payload": "x", "max_attempts": maxAttempts}}}
	if code := h.call("POST", "/v1/tasks", in, &out); code != http.StatusCreated || len(out.IDs) != 1 {
		h.t.Fatalf("submit: %d %v", code, out.IDs)
	}
	return out.IDs[0]
}

type leasedTask struct {
	ID      uint64 `json:"id"`
	Attempt int32  `json:"attempt"`
}

// lease registers agent id for every type and leases one task, waiting up
// to 20 s for it.
func (h *attemptsNode) lease(agent string) leasedTask {
	h.t.Helper()
	tk, _ := h.leaseOr(agent, func() bool { return false })
	return tk
}

// leaseOr is lease, giving up (false) as soon as done says so between
// lease calls.
func (h *attemptsNode) leaseOr(agent string, done func() bool) (leasedTask, bool) {
	h.t.Helper()
	if code := h.call("POST", "/v1/agents", map[string]any{"id": agent, "slots": 1}, nil); code != http.StatusOK && code != http.StatusCreated {
		h.t.Fatalf("register agent %s: %d", agent, code)
	}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		var out struct {
			Tasks []leasedTask `json:"tasks"`
		}
		if code := h.call("POST", "/v1/agents/"+agent+"/lease", map[string]any{"max": 1, "timeout_ms": 500}, &out); code != http.StatusOK {
			h.t.Fatalf("lease: %d", code)
		}
		if len(out.Tasks) > 0 {
			return out.Tasks[0], true
		}
		if done() {
			return leasedTask{}, false
		}
	}
	h.t.Fatalf("agent %s was granted nothing in 20 s", agent)
	return leasedTask{}, false
}

func (h *attemptsNode) complete(agent string, tk leasedTask) {
	h.t.Helper()
	in := map[string]any{"results": []any{map[string]any{"id": tk.ID, "attempt": tk.Attempt, "ok": true, "output": "ok"}}}
	if code := h.call("POST", "/v1/agents/"+agent+"/complete", in, nil); code != http.StatusOK {
		h.t.Fatalf("complete: %d", code)
	}
	// The result is durable when a wait sees it terminal.
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		var out struct {
			Done bool `json:"done"`
		}
		h.call("POST", "/v1/tasks/wait", map[string]any{"ids": []uint64{tk.ID}, "timeout_ms": 2000}, &out)
		if out.Done {
			return
		}
	}
	h.t.Fatalf("task %d not finished 20 s after its result", tk.ID)
}

type taskState struct {
	State    string `json:"state"`
	Attempts int32  `json:"attempts"`
	Error    string `json:"error"`
}

func (h *attemptsNode) get(id uint64) taskState {
	h.t.Helper()
	var o taskState
	if code := h.call("GET", fmt.Sprintf("/v1/tasks/%d", id), nil, &o); code != http.StatusOK {
		h.t.Fatalf("GET task %d: %d", id, code)
	}
	return o
}
