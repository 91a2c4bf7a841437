package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPlanSeedExample(t *testing.T) {
	e := start(t, nil, nil)
	var p struct {
		Assignments []struct{ Task, Executor string }
		Makespan    float64 `json:"makespan"`
	}
	body := map[string]any{
		"tasks":     []map[string]any{{"id": "a", "size": 20}, {"id": "b", "size": 40}, {"id": "c", "size": 40}, {"id": "d", "size": 60}},
		"executors": []map[string]any{{"id": "s1", "backlog": 10}, {"id": "s2", "backlog": 40}, {"id": "s3", "backlog": 60}},
	}
	if code := e.do("POST", "/v1/plan", body, &p); code != http.StatusOK || p.Makespan != 100 || len(p.Assignments) != 4 {
		t.Fatalf("status %d, plan %+v", code, p)
	}
	e.wantError(http.StatusBadRequest, "invalid", "POST", "/v1/plan", map[string]any{
		"tasks": []map[string]any{{"id": "a", "size": -1}}, "executors": []map[string]any{{"id": "s1"}}})
	// No executors given, none registered.
	e.wantError(http.StatusServiceUnavailable, "unavailable", "POST", "/v1/plan", map[string]any{"tasks": []map[string]any{{"id": "a", "size": 1}}})
}

func TestUnplaceableReasonInOutcome(t *testing.T) {
	e := start(t, nil, nil)
	id := e.submit(map[string]any{"type": "noop", "requirements": map[string]string{"os": "=plan9"}, "size": 3})[0]
	for range 200 {
		var raw map[string]any
		e.do("GET", "/v1/tasks/"+strconv.FormatUint(id, 10), nil, &raw)
		if r, _ := raw["reason"].(string); strings.Contains(r, "os=plan9") {
			var st struct {
				Unplaceable []struct {
					Requirements string `json:"requirements"`
					Tasks        int64  `json:"tasks"`
				} `json:"unplaceable"`
			}
			e.do("GET", "/v1/status", nil, &st)
			if len(st.Unplaceable) != 1 || st.Unplaceable[0].Tasks != 1 || !strings.Contains(st.Unplaceable[0].Requirements, "os=plan9") {
				t.Fatalf("status unplaceable %+v", st.Unplaceable)
			}
			return
		}
		time.Sleep(20 * time.Millisecond) // the task reaches dispatch through the pump
	}
	t.Fatal("no unplaceable reason reported for a task no executor can run")
}
