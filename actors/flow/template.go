// Package flow runs multi-step flows (S2.2–S2.6, S3.3): named, versioned
// templates of steps with dependencies; flow instances split into ready
// steps submitted as ordinary tasks (dedupe makes identical steps of
// concurrent flows run once); step results reassembled into one flow result.
//
// A flow instance is itself a durable task of the reserved type
// messages.FlowTaskType whose payload carries its template and normalised
// input. The node's flow runner (actor.go) leases flow tasks from the
// dispatcher like an executor, submits each flow's ready steps through
// intake, follows their results, and completes the flow task with the
// assembled result. After a restart the flow task is queued again and the
// runner replays it: steps that already finished are absorbed by dedupe
// (their results are in its window), so they do not run again.
package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Spec is a template as written (YAML or JSON).
//
//	name: thumbnail
//	priority: 50                 # default flow priority
//	input:
//	  url: {type: string, required: true}
//	  size: {type: number, default: 128}
//	steps:
//	  - name: fetch
//	    type: http.get
//	    args: {url: $input.url}
//	  - name: resize
//	    type: image.resize
//	    args: {image: $steps.fetch.body, size: $input.size}
//	    requirements: {gpu: "=yes"}
//	    retry: {max_attempts: 5}
//	output: {image: $steps.resize}
type Spec struct {
	Name        string                `json:"name"`
	Description string                `json:"description,omitempty"`
	Priority    *int32                `json:"priority,omitempty"`
	Input       map[string]InputField `json:"input,omitempty"`
	Steps       []StepSpec            `json:"steps"`
	// Output maps step results (and the input) to the flow's result. Empty:
	// an object of the results of the steps no other step depends on.
	Output any `json:"output,omitempty"`
}

// StepSpec is one step as written.
type StepSpec struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Args is the step's payload mapping. A mapping that yields a string
	// becomes the payload's bytes as they are; anything else its JSON.
	// No args: an empty payload.
	Args any `json:"args,omitempty"`
	// After lists steps this one waits for besides those its args refer to.
	After        []string          `json:"after,omitempty"`
	Requirements map[string]string `json:"requirements,omitempty"`
	// Priority orders this step inside its flow's priority class.
	Priority *int32 `json:"priority,omitempty"`
	Retry    *Retry `json:"retry,omitempty"`
}

// Retry is a step's retry policy: the dispatcher retries a failed attempt
// with exponential backoff until MaxAttempts (0: the node's default).
type Retry struct {
	MaxAttempts int32 `json:"max_attempts"`
}

// Limits of a template.
const (
	MaxSteps        = 256
	MaxTemplateSize = 256 << 10
	maxNameLen      = 128
)

var stepName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseSpec reads a template from YAML or JSON (JSON is read as JSON;
// anything else as YAML). Unknown fields are errors.
func ParseSpec(text []byte) (*Spec, error) {
	if len(text) > MaxTemplateSize {
		return nil, messages.Errorf(messages.CodeInvalid, "template is %d bytes, the limit is %d", len(text), MaxTemplateSize)
	}
	js := bytes.TrimSpace(text)
	if len(js) == 0 || js[0] != '{' {
		var doc any
		if err := yaml.Unmarshal(text, &doc); err != nil {
			return nil, messages.Errorf(messages.CodeInvalid, "template is not valid YAML or JSON: %v", err)
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, messages.Errorf(messages.CodeInvalid, "template: %v (mapping keys must be strings)", err)
		}
		js = b
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, messages.Errorf(messages.CodeInvalid, "template: %v", err)
	}
	return &s, nil
}

// Plan is a validated, compiled template.
type Plan struct {
	Spec      Spec
	Version   int32
	Canonical []byte // canonical JSON of Spec: what flow tasks carry
	Steps     []Step
	// Order is a topological order of the steps (dependencies first).
	Order  []int
	output expr
	// sinks are the steps no other step depends on (the default output).
	sinks  []int
	inputs []string // declared input fields, sorted
	// usedBy is, per input field a mapping refers to, the first user
	// ("step a", "output"): a missing optional field without a default
	// that something uses is refused at submit, not left to fail the flow.
	usedBy map[string]string
}

// Step is a compiled step.
type Step struct {
	Name         string
	Type         string
	Deps         []int // steps this one waits for
	Dependents   []int
	Requirements map[string]string
	Priority     int32
	HasPriority  bool
	MaxAttempts  int32
	args         expr // nil: empty payload
}

// CompileOptions check what a template may use.
type CompileOptions struct {
	// KnownType, when set, says whether a step type has handlers; a step of
	// an unknown type is refused. Nil accepts every well-formed type.
	KnownType func(string) bool
	// MaxAttempts bounds a step's retry.max_attempts. Default 100.
	MaxAttempts int32
}

// Compile validates a spec and compiles it. Every error names the step (or
// the field) that is wrong.
func Compile(s *Spec, o CompileOptions) (*Plan, error) {
	bad := func(format string, args ...any) error { return messages.Errorf(messages.CodeInvalid, format, args...) }
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 100
	}
	switch {
	case s.Name == "" || len(s.Name) > maxNameLen:
		return nil, bad("template name must be 1 to %d bytes", maxNameLen)
	case strings.ContainsAny(s.Name, " \t\n/"):
		return nil, bad("template name %q must not contain spaces or slashes", s.Name)
	case len(s.Steps) == 0:
		return nil, bad("template %s has no steps", s.Name)
	case len(s.Steps) > MaxSteps:
		return nil, bad("template %s has %d steps, the limit is %d", s.Name, len(s.Steps), MaxSteps)
	case s.Priority != nil && (*s.Priority < messages.MinPriority || *s.Priority > messages.MaxPriority):
		return nil, bad("template %s: priority %d is outside [%d, %d]", s.Name, *s.Priority, messages.MinPriority, messages.MaxPriority)
	}
	for name, f := range s.Input {
		if err := f.check(name); err != nil {
			return nil, err
		}
	}
	p := &Plan{Spec: *s, Steps: make([]Step, len(s.Steps))}
	c := &compiler{stepIndex: map[string]int{}}
	for i, st := range s.Steps {
		if !stepName.MatchString(st.Name) {
			return nil, bad("template %s: step %d: name %q must be 1 to 64 letters, digits, '_' or '-'", s.Name, i, st.Name)
		}
		if _, dup := c.stepIndex[st.Name]; dup {
			return nil, bad("template %s: two steps are named %q", s.Name, st.Name)
		}
		c.stepIndex[st.Name] = i
	}
	for i, st := range s.Steps {
		where := fmt.Sprintf("template %s: step %s", s.Name, st.Name)
		switch {
		case st.Type == "" || len(st.Type) > maxNameLen:
			return nil, bad("%s: type must be 1 to %d bytes", where, maxNameLen)
		case st.Type == messages.FlowTaskType || strings.HasPrefix(st.Type, "shoal."):
			return nil, bad("%s: type %q is reserved", where, st.Type)
		case o.KnownType != nil && !o.KnownType(st.Type):
			return nil, bad("%s: unknown task type %q (no handler is known for it)", where, st.Type)
		case st.Priority != nil && (*st.Priority < messages.MinPriority || *st.Priority > messages.MaxPriority):
			return nil, bad("%s: priority %d is outside [%d, %d]", where, *st.Priority, messages.MinPriority, messages.MaxPriority)
		case st.Retry != nil && (st.Retry.MaxAttempts < 0 || st.Retry.MaxAttempts > o.MaxAttempts):
			return nil, bad("%s: retry.max_attempts %d is outside [0, %d]", where, st.Retry.MaxAttempts, o.MaxAttempts)
		}
		for k, v := range st.Requirements {
			if err := task.ParseRequirement(k, v); err != nil {
				return nil, bad("%s: %v", where, err)
			}
		}
		step := Step{Name: st.Name, Type: st.Type, Requirements: st.Requirements}
		if st.Priority != nil {
			step.Priority, step.HasPriority = *st.Priority, true
		}
		if st.Retry != nil {
			step.MaxAttempts = st.Retry.MaxAttempts
		}
		c.refs = refs{steps: map[string]bool{}, inputs: map[string]bool{}}
		if st.Args != nil {
			e, err := c.compile(st.Args, where+": args")
			if err != nil {
				return nil, bad("%v", err)
			}
			step.args = e
		}
		if err := p.checkInputs(c.refs.inputs, where); err != nil {
			return nil, err
		}
		p.use(c.refs.inputs, "step "+st.Name)
		deps := c.refs.steps
		for _, a := range st.After {
			if _, ok := c.stepIndex[a]; !ok {
				return nil, bad("%s: after: step %q does not exist", where, a)
			}
			deps[a] = true
		}
		if deps[st.Name] {
			return nil, bad("%s: depends on itself", where)
		}
		for d := range deps {
			step.Deps = append(step.Deps, c.stepIndex[d])
		}
		slices.Sort(step.Deps)
		p.Steps[i] = step
	}
	for i := range p.Steps {
		for _, d := range p.Steps[i].Deps {
			p.Steps[d].Dependents = append(p.Steps[d].Dependents, i)
		}
	}
	order, err := p.topo()
	if err != nil {
		return nil, err
	}
	p.Order = order
	for i := range p.Steps {
		if len(p.Steps[i].Dependents) == 0 {
			p.sinks = append(p.sinks, i)
		}
	}
	if s.Output != nil {
		c.refs = refs{steps: map[string]bool{}, inputs: map[string]bool{}}
		e, err := c.compile(s.Output, "template "+s.Name+": output")
		if err != nil {
			return nil, bad("%v", err)
		}
		if err := p.checkInputs(c.refs.inputs, "template "+s.Name+": output"); err != nil {
			return nil, err
		}
		p.use(c.refs.inputs, "output")
		p.output = e
	}
	for name := range s.Input {
		p.inputs = append(p.inputs, name)
	}
	sort.Strings(p.inputs)
	canon, err := json.Marshal(s)
	if err != nil {
		return nil, bad("template %s: %v", s.Name, err)
	}
	p.Canonical = canon
	return p, nil
}

// checkInputs refuses references to input fields the template does not
// declare (a template without an input section takes any input).
func (p *Plan) checkInputs(used map[string]bool, where string) error {
	if p.Spec.Input == nil {
		return nil
	}
	for f := range used {
		if f == "" {
			continue
		}
		if _, ok := p.Spec.Input[f]; !ok {
			return messages.Errorf(messages.CodeInvalid, "%s: uses input field %q, which the template's input section does not declare (declared: %s)",
				where, f, strings.Join(sortedKeys(p.Spec.Input), ", "))
		}
	}
	return nil
}

// use records the first user of each input field in used.
func (p *Plan) use(used map[string]bool, user string) {
	for f := range used {
		if f == "" {
			continue
		}
		if p.usedBy == nil {
			p.usedBy = map[string]string{}
		}
		if _, ok := p.usedBy[f]; !ok {
			p.usedBy[f] = user
		}
	}
}

// topo orders the steps dependencies first (Kahn); a cycle is an error
// naming the steps on it.
func (p *Plan) topo() ([]int, error) {
	left := make([]int, len(p.Steps))
	var ready, order []int
	for i := range p.Steps {
		left[i] = len(p.Steps[i].Deps)
		if left[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, d := range p.Steps[i].Dependents {
			if left[d]--; left[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if len(order) == len(p.Steps) {
		return order, nil
	}
	var cyc []string
	for i := range p.Steps {
		if left[i] > 0 {
			cyc = append(cyc, p.Steps[i].Name)
		}
	}
	return nil, messages.Errorf(messages.CodeInvalid, "template %s: steps %s depend on each other in a cycle",
		p.Spec.Name, strings.Join(cyc, ", "))
}

// Info describes the plan for listings.
func (p *Plan) Info() messages.TemplateInfo {
	names := make([]string, len(p.Steps))
	for i := range p.Steps {
		names[i] = p.Steps[i].Name
	}
	return messages.TemplateInfo{Name: p.Spec.Name, Version: p.Version, Steps: names, Inputs: p.inputs, Spec: p.Canonical}
}

// StepIndex returns the index of a step by name.
func (p *Plan) StepIndex(name string) (int, bool) {
	for i := range p.Steps {
		if p.Steps[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// Payload builds step i's payload from the input and its dependencies'
// results.
func (p *Plan) Payload(i int, e *env) ([]byte, error) {
	st := &p.Steps[i]
	if st.args == nil {
		return nil, nil
	}
	v, err := st.args.eval(e)
	if err != nil {
		return nil, fmt.Errorf("step %s: args: %w", st.Name, err)
	}
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	return json.Marshal(v)
}

// Result assembles the flow's result once every step is done.
func (p *Plan) Result(e *env) ([]byte, error) {
	var v any
	if p.output != nil {
		out, err := p.output.eval(e)
		if err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		v = out
	} else {
		m := make(map[string]any, len(p.sinks))
		for _, i := range p.sinks {
			m[p.Steps[i].Name] = e.outputs[i]
		}
		v = m
	}
	return json.Marshal(v)
}

// parseOutput turns a step's output bytes into a mapping value.
func parseOutput(b []byte) any {
	if len(b) == 0 {
		return ""
	}
	var v any
	if json.Valid(b) && json.Unmarshal(b, &v) == nil {
		return v
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
