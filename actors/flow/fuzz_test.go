package flow

import (
	"errors"
	"testing"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// FuzzTemplate feeds arbitrary text to ParseSpec and Compile (clients
// register templates): no panic, every refusal a CodeInvalid error, and an
// accepted template compiles again from its canonical JSON to the same
// canonical JSON.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		chain,
		"name: t\nsteps: [{name: a, type: x, args: {k: \"${input.v}\"}}]\noutput: $steps.a",
		`{"name":"j","input":{"n":{"type":"integer","default":2}},"steps":[{"name":"a","type":"x","args":"$input.n","after":[]}]}`,
		"name: a\nsteps: &x [*x]",
		"name: t\nsteps:\n - {name: a, type: x, args: [[[[[[[[[[1]]]]]]]]]]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b)
		if err != nil {
			if !errors.Is(err, messages.ErrInvalid) {
				t.Fatalf("ParseSpec: %v is not CodeInvalid", err)
			}
			return
		}
		p, err := Compile(s, CompileOptions{})
		if err != nil {
			if !errors.Is(err, messages.ErrInvalid) {
				t.Fatalf("Compile: %v is not CodeInvalid", err)
			}
			return
		}
		s2, err := ParseSpec(p.Canonical)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, p.Canonical)
		}
		p2, err := Compile(s2, CompileOptions{})
		if err != nil || string(p2.Canonical) != string(p.Canonical) {
			t.Fatalf("canonical form does not compile to itself: %v\n%s\n%s", err, p.Canonical, p2.Canonical)
		}
		// Building payloads and results with an empty environment must not
		// panic either (missing values are errors).
		e := &env{input: map[string]any{}, outputs: make([]any, len(p.Steps))}
		for i := range p.Steps {
			_, _ = p.Payload(i, e)
		}
		_, _ = p.Result(e)
		_, _, _ = p.NormalizeInput(b)
	})
}

// FuzzDecodePayload: a flow task's payload is untrusted (anyone may submit
// a task of the flow type); starting it must fail cleanly, never panic.
func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte(`{"template":"t","version":1,"spec":{"name":"t","steps":[{"name":"a","type":"x"}]},"input":{},"priority":50}`))
	f.Add([]byte(`{"spec":"x","priority":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := New(DefaultConfig())
		m.Enqueue(t0, []task.Record{{ID: 1, Type: messages.FlowTaskType, Payload: b}})
		m.Flush()
	})
}
