package flow

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoalrt/shoal/messages"
)

func compile(t *testing.T, text string, o CompileOptions) (*Plan, error) {
	t.Helper()
	s, err := ParseSpec([]byte(text))
	if err != nil {
		return nil, err
	}
	return Compile(s, o)
}

func mustCompile(t *testing.T, text string) *Plan {
	t.Helper()
	p, err := compile(t, text, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileRefusesBadTemplates(t *testing.T) {
	known := func(s string) bool { return s == "echo" }
	cases := []struct{ name, text, want string }{
		{"no name", "steps: [{name: a, type: echo}]", "template name must be"},
		{"no steps", "name: t", "has no steps"},
		{"unknown field", "name: t\nstep: []", `unknown field "step"`},
		{"bad step name", "name: t\nsteps: [{name: 'a b', type: echo}]", `step 0: name "a b"`},
		{"duplicate", "name: t\nsteps: [{name: a, type: echo}, {name: a, type: echo}]", `two steps are named "a"`},
		{"unknown type", "name: t\nsteps: [{name: a, type: resize}]", `step a: unknown task type "resize"`},
		{"reserved type", "name: t\nsteps: [{name: a, type: shoal.flow}]", `step a: type "shoal.flow" is reserved`},
		{"unknown ref", "name: t\nsteps: [{name: a, type: echo, args: {x: $steps.b.y}}]", `step a: args.x: $steps.b.y refers to step "b"`},
		{"unknown after", "name: t\nsteps: [{name: a, type: echo, after: [z]}]", `step a: after: step "z" does not exist`},
		{"self", "name: t\nsteps: [{name: a, type: echo, args: $steps.a}]", "step a: depends on itself"},
		{"cycle", "name: t\nsteps: [{name: a, type: echo, args: $steps.c}, {name: b, type: echo, args: $steps.a}, {name: c, type: echo, after: [b]}, {name: d, type: echo}]", "steps a, b, c depend on each other in a cycle"},
		{"undeclared input", "name: t\ninput: {x: string}\nsteps: [{name: a, type: echo, args: \"${input.y}\"}]", `step a: uses input field "y", which the template's input section does not declare (declared: x)`},
		{"bad input type", "name: t\ninput: {x: date}\nsteps: [{name: a, type: echo}]", `input field "x": type "date"`},
		{"bad default", "name: t\ninput: {x: {type: integer, default: 1.5}}\nsteps: [{name: a, type: echo}]", `input field "x": default`},
		{"bad requirement", "name: t\nsteps: [{name: a, type: echo, requirements: {gpu: '~~'}}]", "step a: requirement gpu"},
		{"bad priority", "name: t\nsteps: [{name: a, type: echo, priority: 101}]", "step a: priority 101"},
		{"bad retry", "name: t\nsteps: [{name: a, type: echo, retry: {max_attempts: 1000}}]", "step a: retry.max_attempts 1000"},
		{"bad ref", "name: t\nsteps: [{name: a, type: echo, args: \"${nope}\"}]", "$nope is not a reference"},
		{"output ref", "name: t\nsteps: [{name: a, type: echo}]\noutput: $steps.q", `output: $steps.q refers to step "q"`},
		{"not yaml", "name: [", "not valid YAML or JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := compile(t, c.text, CompileOptions{KnownType: known})
			if err == nil || !errors.Is(err, messages.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want an invalid error containing %q", err, c.want)
			}
		})
	}
}

func TestCompileOrdersAndReadsJSON(t *testing.T) {
	p, err := compile(t, `{"name": "j", "steps": [
		{"name": "d", "type": "x", "args": ["$steps.b", "$steps.c"]},
		{"name": "b", "type": "x", "args": "$steps.a"},
		{"name": "c", "type": "x", "after": ["a"]},
		{"name": "a", "type": "x"}]}`, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for k, i := range p.Order {
		pos[p.Steps[i].Name] = k
	}
	if !(pos["a"] < pos["b"] && pos["a"] < pos["c"] && pos["b"] < pos["d"] && pos["c"] < pos["d"]) {
		t.Fatalf("order %v is not topological", pos)
	}
	if len(p.sinks) != 1 || p.Steps[p.sinks[0]].Name != "d" {
		t.Fatalf("sinks %v, want [d]", p.sinks)
	}
	// The same template written in YAML has the same canonical form.
	q := mustCompile(t, "name: j\nsteps:\n - {name: d, type: x, args: [$steps.b, $steps.c]}\n - {name: b, type: x, args: $steps.a}\n - {name: c, type: x, after: [a]}\n - {name: a, type: x}\n")
	if string(p.Canonical) != string(q.Canonical) {
		t.Fatalf("canonical forms differ:\n%s\n%s", p.Canonical, q.Canonical)
	}
}

func TestMappingEvaluates(t *testing.T) {
	p := mustCompile(t, `
name: m
steps:
  - {name: a, type: x}
  - name: b
    type: x
    args:
      whole: $steps.a
      field: $steps.a.items.1.id
      text: "n=${input.n} first=${steps.a.items.0} obj=${steps.a.meta}"
      money: "$$5 and $$${input.n}"
      lit: [1, true, null, "plain"]
      in: $input
`)
	e := &env{input: map[string]any{"n": 3.0}, outputs: []any{
		parseOutput([]byte(`{"items": ["x", {"id": 7}], "meta": {"k": "v"}}`)), nil,
	}}
	b, err := p.Payload(1, e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"field":7,"in":{"n":3},"lit":[1,true,null,"plain"],"money":"$5 and $3","text":"n=3 first=x obj={\"k\":\"v\"}","whole":{"items":["x",{"id":7}],"meta":{"k":"v"}}}`
	if string(b) != want {
		t.Fatalf("payload\n%s\nwant\n%s", b, want)
	}
	// A string mapping is the payload's bytes as they are; no args: empty.
	q := mustCompile(t, "name: s\nsteps: [{name: a, type: x, args: \"id-${input}\"}, {name: b, type: x}]")
	if b, _ := q.Payload(0, &env{input: "42", outputs: make([]any, 2)}); string(b) != "id-42" {
		t.Fatalf("string payload %q", b)
	}
	if b, _ := q.Payload(1, &env{outputs: make([]any, 2)}); b != nil {
		t.Fatalf("no-args payload %q", b)
	}
	// Missing paths are errors naming the step and the path.
	e.outputs[0] = parseOutput([]byte("not json"))
	if _, err := p.Payload(1, e); err == nil || !strings.Contains(err.Error(), "step b: args: $steps.a.items.1.id: $steps.a is a string") {
		t.Fatalf("err = %v", err)
	}
	e.outputs[0] = parseOutput([]byte(`{"items": []}`))
	if _, err := p.Payload(1, e); err == nil || !strings.Contains(err.Error(), `has 0 elements, no index "1"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestNormalizeInput(t *testing.T) {
	p := mustCompile(t, `
name: n
input:
  s: string
  n: {type: number, default: 2}
  i: {type: integer}
  b: boolean
  o: {type: object, required: true}
steps: [{name: a, type: x}]
`)
	cases := []struct{ in, want, err string }{
		{`{"o": {}}`, `{"n":2,"o":{}}`, ""},
		{`{"o": {"z":1,"a":2}, "s": 5, "n": "2.50", "i": "4", "b": "true"}`, `{"b":true,"i":4,"n":2.5,"o":{"a":2,"z":1},"s":"5"}`, ""},
		{`{}`, "", `input field "o" is required`},
		{`{"o": {}, "x": 1}`, "", `input field "x" is not declared by the template (declared: b, i, n, o, s)`},
		{`{"o": {}, "i": 1.5}`, "", `must be an integer`},
		{`{"o": {}, "b": "maybe"}`, "", `input field "b" must be boolean, got a string`},
		{`{"o": []}`, "", `input field "o" must be object, got an array`},
		{`[1]`, "", "input must be a JSON object"},
		{`{`, "", "input is not valid JSON"},
	}
	for _, c := range cases {
		b, _, err := p.NormalizeInput([]byte(c.in))
		switch {
		case c.err == "" && (err != nil || string(b) != c.want):
			t.Errorf("%s: got %s, %v; want %s", c.in, b, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err %v, want %q", c.in, err, c.err)
		}
	}
	// Without an input section any JSON is taken as it is (canonicalised).
	q := mustCompile(t, "name: free\nsteps: [{name: a, type: x}]")
	if b, _, err := q.NormalizeInput([]byte(` {"b": 1, "a": [true]} `)); err != nil || string(b) != `{"a":[true],"b":1}` {
		t.Fatalf("free input: %s %v", b, err)
	}
}

func TestRegistryVersions(t *testing.T) {
	r := NewRegistry(CompileOptions{})
	v1, err := r.Register([]byte("name: t\nsteps: [{name: a, type: x}]"))
	if err != nil || v1.Version != 1 {
		t.Fatalf("v1: %v %v", v1, err)
	}
	same, _ := r.Register([]byte(`{"name": "t", "steps": [{"name": "a", "type": "x"}]}`))
	if same != v1 {
		t.Fatalf("the same template in JSON got version %d, want the cached v1", same.Version)
	}
	v2, err := r.Register([]byte("name: t\nsteps: [{name: a, type: y}]"))
	if err != nil || v2.Version != 2 {
		t.Fatalf("v2: %v %v", v2, err)
	}
	if p, _ := r.Get("t", 0); p != v2 {
		t.Fatal("latest is not v2")
	}
	if p, _ := r.Get("t", 1); p != v1 {
		t.Fatal("v1 not kept")
	}
	if _, err := r.Get("t", 7); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("v7: %v", err)
	}
	if l := r.List(true); len(l) != 2 || l[0].Version != 1 || l[1].Version != 2 {
		t.Fatalf("list all: %+v", l)
	}
	if l := r.List(false); len(l) != 1 || l[0].Version != 2 {
		t.Fatalf("list latest: %+v", l)
	}
}

func TestClassesKeepStepsInTheFlowsClass(t *testing.T) {
	c := Classes{HighMin: 70, LowMax: 29}
	own := &Step{Priority: 99, HasPriority: true}
	none := &Step{}
	for _, tc := range []struct {
		flow int32
		st   *Step
		want int32
	}{{90, none, 90}, {10, own, 29}, {50, own, 69}, {80, own, 99}, {5, &Step{Priority: 1, HasPriority: true}, 1}, {75, &Step{Priority: 3, HasPriority: true}, 70}} {
		if got := c.StepPriority(tc.flow, tc.st); got != tc.want {
			t.Errorf("flow %d step %+v: %d, want %d", tc.flow, tc.st, got, tc.want)
		}
	}
}

// TestNormalizeInputOptionalUsedWithoutDefault: an optional input field
// with no default that a mapping uses is refused at submit when missing
// (it was accepted, and the flow died at run time on the missing field); a
// missing optional field nothing uses is fine.
func TestNormalizeInputOptionalUsedWithoutDefault(t *testing.T) {
	p := mustCompile(t, `
name: n
input:
  used: string
  unused: string
  out: string
steps: [{name: a, type: x, args: "${input.used}"}]
output: {a: $steps.a, o: $input.out}
`)
	for _, c := range []struct{ in, err string }{
		{`{"out": "o"}`, `flow n: input field "used" is missing: the template uses it (step a) and gives it no default; pass it, or give it a default or required: true in the template`},
		{`{"used": "u"}`, `input field "out" is missing: the template uses it (output)`},
	} {
		if _, _, err := p.NormalizeInput([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err %v, want %q", c.in, err, c.err)
		}
	}
	if _, _, err := p.NormalizeInput([]byte(`{"used": "u", "out": "o"}`)); err != nil {
		t.Fatalf("all used fields given: %v", err)
	}
}
