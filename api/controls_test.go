package api_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/node"
)

// TestAgentTimeout: an HTTP agent that heartbeats but never completes a
// timed task hears of it under cancel once the attempt times out, and the
// task is dead after its attempts with a timeout error.
func TestAgentTimeout(t *testing.T) {
	e := start(t, func(c *node.Config) { withExecToken(c); c.Dispatch.RetryBase = 10 * time.Millisecond }, nil)
	e.register("h1", "job")
	idl := e.submit(map[string]any{"type": "job", "payload": "p", "timeout_ms": 200, "max_attempts": 1})
	var l struct {
		Tasks []struct {
			ID        uint64 `json:"id"`
			TimeoutMS int64  `json:"timeout_ms"`
		} `json:"tasks"`
		Cancel []uint64 `json:"cancel"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(l.Tasks) == 0 && time.Now().Before(deadline) {
		e.do("POST", "/v1/agents/h1/lease", map[string]any{"timeout_ms": 200}, &l)
	}
	if len(l.Tasks) != 1 || l.Tasks[0].TimeoutMS != 200 {
		t.Fatalf("lease %+v, want the task with its timeout", l)
	}
	heard := false
	for !heard && time.Now().Before(deadline) {
		var hb struct {
			Cancel []uint64 `json:"cancel"`
		}
		e.do("POST", "/v1/agents/h1/heartbeat", map[string]any{"held": []uint64{idl[0]}}, &hb)
		heard = slices.Contains(hb.Cancel, idl[0])
		if !heard {
			l.Cancel = nil
			e.do("POST", "/v1/agents/h1/lease", map[string]any{"timeout_ms": 100}, &l)
			heard = slices.Contains(l.Cancel, idl[0])
		}
	}
	if !heard {
		t.Fatal("the agent never heard that its timed-out task was revoked")
	}
	if out := e.waitDone(idl...); out[0].State != "dead" || !strings.HasPrefix(out[0].Error, "timeout: ") {
		t.Fatalf("outcome %+v, want dead with a timeout error", out[0])
	}
}

// TestPauseResumeHTTP: POST /v1/pause and /v1/resume change the paused
// set, /v1/status shows it, and a bad class is a 400.
func TestPauseResumeHTTP(t *testing.T) {
	e := start(t, nil, nil)
	var p struct {
		Types   []string `json:"types"`
		Classes []string `json:"classes"`
	}
	if code := e.do("POST", "/v1/pause", map[string]any{"types": []string{"thumb"}, "classes": []string{"low"}}, &p); code != 200 ||
		!slices.Equal(p.Types, []string{"thumb"}) || !slices.Equal(p.Classes, []string{"low"}) {
		t.Fatalf("pause: %d %+v", code, p)
	}
	var st api.StatusOut
	e.do("GET", "/v1/status", nil, &st)
	if !slices.Equal(st.PausedTypes, []string{"thumb"}) || !st.Classes[2].Paused {
		t.Fatalf("status %+v", st)
	}
	if code := e.do("POST", "/v1/pause", map[string]any{"classes": []string{"urgent"}}, nil); code != 400 {
		t.Fatalf("bad class: %d, want 400", code)
	}
	if code := e.do("POST", "/v1/pause", map[string]any{}, nil); code != 400 {
		t.Fatalf("empty pause: %d, want 400", code)
	}
	if code := e.do("POST", "/v1/resume", map[string]any{"types": []string{"thumb"}, "classes": []string{"low"}}, &p); code != 200 || len(p.Types)+len(p.Classes) != 0 {
		t.Fatalf("resume: %d %+v", code, p)
	}
}
