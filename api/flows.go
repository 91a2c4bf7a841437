package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/shoalrt/shoal/messages"
)

// Flows (S2.2–S2.6) over HTTP: templates, runs, a flow's steps, cancel. A
// flow's id is a task id: /v1/tasks/wait and /v1/tasks/{id} work on it too
// (the outcome's output is the assembled result).

func (s *Server) flowRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/v1/templates", handler: s.registerTemplate},
		{Method: "GET", Path: "/v1/templates", handler: s.listTemplates},
		{Method: "POST", Path: "/v1/flows", handler: s.runFlows},
		{Method: "GET", Path: "/v1/flows/{id}", handler: s.getFlow},
		{Method: "POST", Path: "/v1/flows/cancel", handler: s.cancel},
	}
}

// TemplateOut is one registered template version.
type TemplateOut struct {
	Name    string   `json:"name"`
	Version int32    `json:"version"`
	Steps   []string `json:"steps"`
	Inputs  []string `json:"inputs,omitempty"`
	// Spec is the template in canonical JSON.
	Spec json.RawMessage `json:"spec,omitempty"`
}

func templateOut(t messages.TemplateInfo) TemplateOut {
	out := TemplateOut{Name: t.Name, Version: t.Version, Steps: t.Steps, Inputs: t.Inputs}
	if t.Steps == nil {
		out.Steps = []string{}
	}
	if json.Valid(t.Spec) {
		out.Spec = t.Spec
	}
	return out
}

type templateIn struct {
	// Spec is the template's YAML or JSON text.
	Spec string `json:"spec,omitempty"`
	// Template is the template as a JSON object.
	Template json.RawMessage `json:"template,omitempty"`
}

// POST /v1/templates: the body is {"spec": "<YAML or JSON text>"} or
// {"template": {...}}; with Content-Type application/yaml (or text/yaml)
// the body is the template's YAML itself.
func (s *Server) registerTemplate(w http.ResponseWriter, r *http.Request) {
	var spec []byte
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, jsonError(err))
			return
		}
		spec = b
	default:
		var in templateIn
		if e := decode(r, &in); e != nil {
			writeError(w, e)
			return
		}
		raw := bytes.TrimSpace(in.Template)
		switch {
		case in.Spec != "" && len(raw) > 0:
			writeError(w, messages.Errorf(messages.CodeInvalid, "set spec (YAML or JSON text) or template (a JSON object), not both"))
			return
		case in.Spec != "":
			spec = []byte(in.Spec)
		case len(raw) > 0 && raw[0] == '{':
			spec = raw
		default:
			writeError(w, messages.Errorf(messages.CodeInvalid, "give spec (the template's YAML or JSON text) or template (a JSON object)"))
			return
		}
	}
	if len(bytes.TrimSpace(spec)) == 0 {
		writeError(w, messages.Errorf(messages.CodeInvalid, "empty template"))
		return
	}
	info, err := s.client.RegisterTemplate(r.Context(), spec)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, templateOut(info))
}

// GET /v1/templates[?all=true]: the latest version of each template, or
// every kept version.
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	all := false
	if v := r.URL.Query().Get("all"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, messages.Errorf(messages.CodeInvalid, "all=%q: want true or false", v))
			return
		}
		all = b
	}
	ts, err := s.client.Templates(r.Context(), all)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	out := make([]TemplateOut, len(ts))
	for i, t := range ts {
		out[i] = templateOut(t)
		if !all {
			out[i].Spec = nil // the listing names them; all=true shows every text
		}
	}
	writeJSON(w, http.StatusOK, map[string][]TemplateOut{"templates": out})
}

// FlowIn is one flow to start.
type FlowIn struct {
	Template string `json:"template"`
	// TemplateVersion picks a version; absent or 0: the latest.
	TemplateVersion int32 `json:"template_version,omitempty"`
	// Input is a JSON object, normalised against the template's inputs.
	Input    json.RawMessage `json:"input,omitempty"`
	Priority *int32          `json:"priority,omitempty"`
}

type runFlowsIn struct {
	Flows []FlowIn `json:"flows"`
}

// POST /v1/flows: all or nothing, answered once every flow is durable.
func (s *Server) runFlows(w http.ResponseWriter, r *http.Request) {
	var in runFlowsIn
	if e := decode(r, &in); e != nil {
		writeError(w, e)
		return
	}
	if len(in.Flows) == 0 {
		writeError(w, messages.Errorf(messages.CodeInvalid, "flows: give at least one flow"))
		return
	}
	specs := make([]messages.FlowSpec, len(in.Flows))
	for i, f := range in.Flows {
		input := bytes.TrimSpace(f.Input)
		if bytes.Equal(input, []byte("null")) {
			input = nil
		}
		if len(input) > 0 && input[0] != '{' {
			writeError(w, messages.TaskErrorf(messages.CodeInvalid, i, "input must be a JSON object"))
			return
		}
		specs[i] = messages.FlowSpec{Template: f.Template, TemplateVersion: f.TemplateVersion, Input: input}
		if f.Priority != nil {
			specs[i].Priority, specs[i].HasPriority = *f.Priority, true
		}
	}
	ids, err := s.client.RunFlows(r.Context(), specs)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusCreated, idsOut{IDs: ids})
}

// StepOut is one step of a flow.
type StepOut struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// State is "unknown" while the step waits for its inputs.
	State  string `json:"state"`
	TaskID uint64 `json:"task_id,omitempty"`
	// Shared is set when the step joined an identical task and did not run again.
	Shared bool `json:"shared,omitempty"`
}

// FlowOut is a flow's outcome and, while it runs, its steps.
type FlowOut struct {
	ID              uint64     `json:"id"`
	Template        string     `json:"template,omitempty"`
	TemplateVersion int32      `json:"template_version,omitempty"`
	Outcome         OutcomeOut `json:"outcome"`
	// Result is the assembled result as JSON once the flow is done (the
	// same bytes as outcome.output).
	Result json.RawMessage `json:"result,omitempty"`
	Steps  []StepOut       `json:"steps"`
}

// GET /v1/flows/{id}
func (s *Server) getFlow(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	st, err := s.client.GetFlow(r.Context(), id)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, FlowJSON(st))
}

// FlowJSON is a flow's status as GET /v1/flows/{id} answers it (what `shoal
// flow get --json` prints too: one JSON shape for both).
func FlowJSON(st *messages.FlowStatus) FlowOut {
	out := FlowOut{ID: st.ID, Template: st.Template, TemplateVersion: st.TemplateVersion, Outcome: outcomeOut(st.Outcome), Steps: []StepOut{}}
	if st.Outcome.State == messages.StateDone && json.Valid(st.Outcome.Output) {
		out.Result = st.Outcome.Output
	}
	for _, p := range st.Steps {
		out.Steps = append(out.Steps, StepOut{Name: p.Name, Type: p.Type, State: p.State.String(), TaskID: p.TaskID, Shared: p.Shared})
	}
	return out
}
