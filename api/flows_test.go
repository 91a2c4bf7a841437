package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/sdk"
)

const shoutTemplate = `
name: shout
input:
  text: {type: string, required: true}
steps:
  - name: up
    type: upper
    args: $input.text
  - name: again
    type: upper
    args: "x-${steps.up}"
output:
  result: $steps.again
`

func runUpperWorker(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := sdk.NewWorker(e.conn, sdk.WorkerConfig{Slots: 4, NoLoad: true})
	w.Handle("upper", func(_ context.Context, t messages.Task) ([]byte, error) {
		return []byte(strings.ToUpper(string(t.Payload))), nil
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// rawDo posts a body with a content type of choice.
func (e *env) rawDo(contentType, path, body string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.tok)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode
}

func TestFlowsOverHTTP(t *testing.T) {
	e := start(t, nil, nil)
	runUpperWorker(t, e)

	var tpl api.TemplateOut
	if code := e.do("POST", "/v1/templates", map[string]any{"spec": shoutTemplate}, &tpl); code != 200 {
		t.Fatalf("register: %d", code)
	}
	if tpl.Name != "shout" || tpl.Version != 1 || !slices.Equal(tpl.Steps, []string{"up", "again"}) || len(tpl.Spec) == 0 {
		t.Fatalf("registered %+v", tpl)
	}
	// The same text as YAML body keeps its version.
	var again api.TemplateOut
	if code := e.rawDo("application/yaml", "/v1/templates", shoutTemplate, &again); code != 200 || again.Version != 1 {
		t.Fatalf("YAML body: %d %+v", code, again)
	}
	var list struct {
		Templates []api.TemplateOut `json:"templates"`
	}
	if code := e.do("GET", "/v1/templates", nil, &list); code != 200 || len(list.Templates) != 1 || list.Templates[0].Name != "shout" {
		t.Fatalf("list: %d %+v", code, list)
	}
	if code := e.do("GET", "/v1/templates?all=true", nil, &list); code != 200 || len(list.Templates) != 1 || len(list.Templates[0].Spec) == 0 {
		t.Fatalf("list all: %d %+v", code, list)
	}

	var ack ids
	if code := e.do("POST", "/v1/flows", map[string]any{"flows": []any{
		map[string]any{"template": "shout", "input": map[string]any{"text": "hi"}},
		map[string]any{"template": "shout", "template_version": 1, "input": map[string]any{"text": "yo"}, "priority": 90},
	}}, &ack); code != 201 || len(ack.IDs) != 2 {
		t.Fatalf("run: %d %v", code, ack)
	}
	out := e.waitDone(ack.IDs...)
	for i, want := range []string{"X-HI", "X-YO"} {
		var res map[string]string
		if out[i].State != "done" || out[i].Output == nil || json.Unmarshal([]byte(*out[i].Output), &res) != nil || res["result"] != want {
			t.Fatalf("flow %d: %+v, want result %s", i, out[i], want)
		}
	}
	var fl api.FlowOut
	if code := e.do("GET", "/v1/flows/"+itoa(ack.IDs[0]), nil, &fl); code != 200 || fl.Template != "shout" || fl.TemplateVersion != 1 || fl.Outcome.State != "done" {
		t.Fatalf("get flow: %d %+v", code, fl)
	}
	var res map[string]string
	if err := json.Unmarshal(fl.Result, &res); err != nil || res["result"] != "X-HI" {
		t.Fatalf("flow result %s: %v", fl.Result, err)
	}
}

func TestFlowRoutesRefuseBadInput(t *testing.T) {
	e := start(t, nil, nil)
	var tpl api.TemplateOut
	if code := e.do("POST", "/v1/templates", map[string]any{"spec": shoutTemplate}, &tpl); code != 200 {
		t.Fatalf("register: %d", code)
	}
	e.wantError(400, "invalid", "POST", "/v1/templates", map[string]any{})
	e.wantError(400, "invalid", "POST", "/v1/templates", map[string]any{"spec": "x", "template": map[string]any{"name": "y"}})
	e.wantError(400, "invalid", "POST", "/v1/templates", map[string]any{"spec": "name: c\nsteps:\n - {name: a, type: t, args: $steps.b}\n - {name: b, type: t, args: $steps.a}\n"})
	e.wantError(400, "invalid", "POST", "/v1/templates", `{"spec": 5}`)
	e.wantError(400, "invalid", "GET", "/v1/templates?all=maybe", nil)
	e.wantError(400, "invalid", "POST", "/v1/flows", map[string]any{"flows": []any{}})
	ae := e.wantError(400, "invalid", "POST", "/v1/flows", map[string]any{"flows": []any{
		map[string]any{"template": "shout", "input": map[string]any{"text": "ok"}},
		map[string]any{"template": "shout", "input": []int{1}},
	}})
	if ae.Error.Index == nil || *ae.Error.Index != 1 {
		t.Fatalf("index %v, want 1", ae.Error.Index)
	}
	var ae2 apiError
	if code := e.do("POST", "/v1/flows", map[string]any{"flows": []any{map[string]any{"template": "nope"}}}, &ae2); code < 400 || code >= 500 || ae2.Error.Code == "" {
		t.Fatalf("unknown template: %d %+v, want a 4xx error", code, ae2)
	}
	if code := e.do("POST", "/v1/flows", map[string]any{"flows": []any{map[string]any{"template": "shout", "input": map[string]any{}}}}, &ae2); code != 400 {
		t.Fatalf("missing required input: %d %+v", code, ae2)
	}
	e.wantError(400, "invalid", "GET", "/v1/flows/abc", nil)
	e.wantError(404, "not_found", "GET", "/v1/flows/9999", nil)
	tsk := e.submit(map[string]any{"type": "echo", "payload": "x"})
	e.wantError(400, "invalid", "GET", "/v1/flows/"+itoa(tsk[0]), nil)
	if n := accepted(t, e); n != 1 {
		t.Fatalf("refused flows accepted work: %d tasks accepted, want only the plain task", n)
	}
}

func TestFlowCancelOverHTTP(t *testing.T) {
	e := start(t, nil, nil) // no worker: the flow's first step waits
	var tpl api.TemplateOut
	e.do("POST", "/v1/templates", map[string]any{"spec": shoutTemplate}, &tpl)
	var ack ids
	if code := e.do("POST", "/v1/flows", map[string]any{"flows": []any{map[string]any{"template": "shout", "input": map[string]any{"text": "z"}}}}, &ack); code != 201 {
		t.Fatalf("run: %d", code)
	}
	var out outcomes
	if code := e.do("POST", "/v1/flows/cancel", map[string]any{"ids": ack.IDs}, &out); code != 200 || len(out.Outcomes) != 1 {
		t.Fatalf("cancel: %d %+v", code, out)
	}
	if got := e.waitDone(ack.IDs...); got[0].State != "cancelled" {
		t.Fatalf("after cancel: %+v", got[0])
	}
	e.wantError(400, "invalid", "POST", "/v1/flows/cancel", map[string]any{"ids": []uint64{}})
}
