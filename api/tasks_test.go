package api_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
)

// runWorker attaches a native executor echoing "out:" + payload.
func runWorker(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := sdk.NewWorker(e.conn, sdk.WorkerConfig{Slots: 4, NoLoad: true})
	w.Handle("echo", func(_ context.Context, t messages.Task) ([]byte, error) {
		return append([]byte("out:"), t.Payload...), nil
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func accepted(t *testing.T, e *env) int64 {
	t.Helper()
	var st struct {
		Counters map[string]int64 `json:"counters"`
	}
	if code := e.do("GET", "/v1/status", nil, &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	return st.Counters["accepted"]
}

func TestAuthOnEveryRoute(t *testing.T) {
	e := start(t, nil, nil)
	for _, r := range e.api.Routes() {
		path := strings.ReplaceAll(r.Path, "{id}", "1")
		for _, tok := range []string{"", "wrong"} {
			var ae apiError
			code := e.doTok(tok, r.Method, path, "{}", &ae)
			if r.Public {
				if code != http.StatusOK {
					t.Errorf("%s %s (public) without token: %d", r.Method, path, code)
				}
				continue
			}
			if code != http.StatusUnauthorized || ae.Error.Code != "unauthorized" {
				t.Errorf("%s %s token %q: status %d code %q, want 401 unauthorized", r.Method, path, tok, code, ae.Error.Code)
			}
		}
	}
	if accepted(t, e) != 0 {
		t.Fatal("an unauthorized call changed the node")
	}
}

func TestSubmitGetWait(t *testing.T) {
	e := start(t, nil, nil)
	runWorker(t, e)
	bin := []byte{0xff, 0x00, 0xfe}
	idl := e.submit(
		map[string]any{"type": "echo", "payload": "hello"},
		map[string]any{"type": "echo", "payload": map[string]any{"a": 1}, "priority": 90},
		map[string]any{"type": "echo", "payload_base64": base64.StdEncoding.EncodeToString(bin)},
	)
	out := e.waitDone(idl...)
	if len(out) != 3 {
		t.Fatalf("outcomes %+v", out)
	}
	if o := out[0]; o.State != "done" || o.Output == nil || *o.Output != "out:hello" || o.ID != idl[0] {
		t.Fatalf("text payload: %+v", o)
	}
	if o := out[1]; o.Output == nil || *o.Output != `out:{"a":1}` {
		t.Fatalf("JSON payload: %+v", o)
	}
	if o := out[2]; o.Output != nil || o.OutputBase64 != base64.StdEncoding.EncodeToString(append([]byte("out:"), bin...)) {
		t.Fatalf("binary payload: %+v", o)
	}
	var one outcome
	if code := e.do("GET", "/v1/tasks/"+itoa(idl[0]), nil, &one); code != http.StatusOK || one.State != "done" || *one.Output != "out:hello" || one.Attempts != 1 {
		t.Fatalf("get: %d %+v", code, one)
	}
}

func itoa(id uint64) string { return strconv.FormatUint(id, 10) }

func TestSubmitRefusesBadInputAndWritesNothing(t *testing.T) {
	e := start(t, nil, func(c *api.Config) { c.MaxBodyBytes = 4096 })
	cases := []struct {
		name, body string
		status     int
		code       string
		index      int32 // -1: none
	}{
		{"not JSON", `{"tasks": [`, 400, "invalid", -1},
		{"syntax", `{"tasks": x}`, 400, "invalid", -1},
		{"empty body", ``, 400, "invalid", -1},
		{"unknown field", `{"tasks": [{"type": "echo"}], "extra": 1}`, 400, "invalid", -1},
		{"wrong type", `{"tasks": [{"type": 5}]}`, 400, "invalid", -1},
		{"trailing data", `{"tasks": [{"type": "echo"}]} {}`, 400, "invalid", -1},
		{"no tasks", `{"tasks": []}`, 400, "invalid", -1},
		{"bad priority in batch", `{"tasks": [{"type": "echo"}, {"type": "echo", "priority": 101}]}`, 400, "bad_priority", 1},
		{"both payloads", `{"tasks": [{"type": "echo", "payload": "a", "payload_base64": "YQ=="}]}`, 400, "invalid", 0},
		{"bad base64", `{"tasks": [{"type": "echo", "payload_base64": "!!"}]}`, 400, "invalid", 0},
		{"bad requirement", `{"tasks": [{"type": "echo", "requirements": {"go": ">>> 1"}}]}`, 400, "bad_requirement", 0},
		{"missing type", `{"tasks": [{"payload": "a"}]}`, 400, "invalid", 0},
		{"too large", `{"tasks": [{"type": "echo", "payload": "` + strings.Repeat("x", 5000) + `"}]}`, 413, "payload_too_large", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ae := e.wantError(c.status, c.code, "POST", "/v1/tasks", c.body)
			if c.index >= 0 && (ae.Error.Index == nil || *ae.Error.Index != c.index) {
				t.Fatalf("index %v, want %d (%s)", ae.Error.Index, c.index, ae.Error.Message)
			}
			if c.index < 0 && ae.Error.Index != nil {
				t.Fatalf("index %d on a whole-request error", *ae.Error.Index)
			}
		})
	}
	if n := accepted(t, e); n != 0 {
		t.Fatalf("refused submissions accepted %d tasks", n)
	}
}

func TestGetTaskErrors(t *testing.T) {
	e := start(t, nil, nil)
	e.wantError(400, "invalid", "GET", "/v1/tasks/abc", nil)
	e.wantError(400, "invalid", "GET", "/v1/tasks/0", nil)
	e.wantError(404, "not_found", "GET", "/v1/tasks/999", nil)
	e.wantError(404, "not_found", "GET", "/v1/nothing", nil)
	var ae apiError
	if code := e.do("DELETE", "/v1/tasks", nil, &ae); code != http.StatusMethodNotAllowed || ae.Error.Code != "invalid" {
		t.Fatalf("DELETE /v1/tasks: %d %+v, want 405", code, ae)
	}
}

func TestWaitIsBoundedAndReportsWhereTasksWait(t *testing.T) {
	e := start(t, nil, nil) // no executor: the task stays queued
	idl := e.submit(map[string]any{"type": "echo", "payload": "x"})
	var out outcomes
	if code := e.do("POST", "/v1/tasks/wait", map[string]any{"ids": idl, "timeout_ms": 200}, &out); code != 200 {
		t.Fatalf("wait: %d", code)
	}
	if out.Done || len(out.Outcomes) != 1 || out.Outcomes[0].State != "queued" {
		t.Fatalf("wait on a queued task: %+v", out)
	}
	if code := e.do("POST", "/v1/tasks/wait", map[string]any{"ids": idl, "timeout_ms": 0}, &out); code != 200 || out.Done {
		t.Fatalf("wait 0: %d %+v", code, out)
	}
	e.wantError(400, "invalid", "POST", "/v1/tasks/wait", map[string]any{"ids": []uint64{}})
	e.wantError(400, "invalid", "POST", "/v1/tasks/wait", map[string]any{"ids": idl, "timeout_ms": -1})
	e.wantError(400, "invalid", "POST", "/v1/tasks/wait", map[string]any{"ids": []uint64{0}})
	e.wantError(400, "invalid", "POST", "/v1/tasks/wait", `{"ids": "1"}`)
}

func TestCancel(t *testing.T) {
	e := start(t, nil, nil)
	idl := e.submit(map[string]any{"type": "echo", "payload": "x"}, map[string]any{"type": "echo", "payload": "y"})
	var out outcomes
	if code := e.do("POST", "/v1/tasks/cancel", map[string]any{"ids": idl[:1]}, &out); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	if len(out.Outcomes) != 1 || out.Outcomes[0].State != "cancelled" || !out.Done {
		t.Fatalf("cancel answer: %+v", out)
	}
	got := e.waitDone(idl[0])
	if got[0].State != "cancelled" {
		t.Fatalf("after cancel: %+v", got[0])
	}
	var one outcome
	if code := e.do("GET", "/v1/tasks/"+itoa(idl[1]), nil, &one); code != 200 || one.State != "queued" {
		t.Fatalf("the other task: %d %+v", code, one)
	}
	e.wantError(400, "invalid", "POST", "/v1/tasks/cancel", map[string]any{"ids": []uint64{}})
	e.wantError(400, "invalid", "POST", "/v1/tasks/cancel", `{"ids": [1], "x": 1}`)
}

func TestStatusAndHealth(t *testing.T) {
	e := start(t, func(c *node.Config) { c.Name = "api-node" }, nil)
	var st api.StatusOut
	if code := e.do("GET", "/v1/status", nil, &st); code != 200 {
		t.Fatalf("status: %d", code)
	}
	if st.Node != "api-node" || len(st.Classes) != messages.NumClasses || st.Counters == nil {
		t.Fatalf("status: %+v", st)
	}
	var h map[string]string
	if code := e.doTok("", "GET", "/healthz", nil, &h); code != 200 || h["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, h)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := api.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := api.DefaultConfig()
	c.DefaultWait = 2 * c.MaxWait
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "DefaultWait") {
		t.Fatalf("Validate = %v, want DefaultWait named", err)
	}
}
