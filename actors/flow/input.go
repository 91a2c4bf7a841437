package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/shoalrt/shoal/messages"
)

// InputField declares one field of a flow's input. In a template it is
// written in full ({type: number, required: true, default: 3}) or as just
// its type ("number").
type InputField struct {
	// Type is one of string, number, integer, boolean, object, array, any.
	// Default any.
	Type     string `json:"type,omitempty"`
	Required bool   `json:"required,omitempty"`
	Default  any    `json:"default,omitempty"`
}

var inputTypes = map[string]bool{"": true, "any": true, "string": true, "number": true, "integer": true, "boolean": true, "object": true, "array": true}

// UnmarshalJSON accepts the short form (the type alone).
func (f *InputField) UnmarshalJSON(b []byte) error {
	var t string
	if json.Unmarshal(b, &t) == nil {
		*f = InputField{Type: t}
		return nil
	}
	type plain InputField
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*f = InputField(p)
	return nil
}

func (f InputField) check(name string) error {
	if !inputTypes[f.Type] {
		return messages.Errorf(messages.CodeInvalid, "input field %q: type %q is not one of string, number, integer, boolean, object, array, any", name, f.Type)
	}
	if f.Default != nil {
		if _, err := f.coerce(name, f.Default); err != nil {
			return messages.Errorf(messages.CodeInvalid, "input field %q: default: %v", name, err)
		}
	}
	return nil
}

// coerce checks v against the field's type, converting the obvious cases
// (a numeric string for a number, "true"/"false" for a boolean, a number for
// a string) so that equivalent inputs normalise to the same value.
func (f InputField) coerce(name string, v any) (any, error) {
	wrong := func() (any, error) {
		return nil, fmt.Errorf("input field %q must be %s, got %s", name, f.Type, kindOf(v))
	}
	switch f.Type {
	case "", "any":
		return v, nil
	case "string":
		switch x := v.(type) {
		case string:
			return x, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		}
		return wrong()
	case "number", "integer":
		var n float64
		switch x := v.(type) {
		case float64:
			n = x
		case string:
			p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return wrong()
			}
			n = p
		default:
			return wrong()
		}
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return wrong()
		}
		if f.Type == "integer" && n != math.Trunc(n) {
			return nil, fmt.Errorf("input field %q must be an integer, got %v", name, n)
		}
		return n, nil
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return wrong()
	case "object":
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
		return wrong()
	case "array":
		if _, ok := v.([]any); ok {
			return v, nil
		}
		return wrong()
	}
	return wrong()
}

// NormalizeInput checks a flow's input (a JSON object; empty means {})
// against the template and returns its canonical JSON (defaults filled in,
// values coerced, keys sorted) and value. A template without an input
// section takes any JSON value as it is.
func (p *Plan) NormalizeInput(raw []byte) ([]byte, any, error) {
	bad := func(format string, args ...any) error {
		return messages.Errorf(messages.CodeInvalid, "flow %s: "+format, append([]any{p.Spec.Name}, args...)...)
	}
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, nil, bad("input is not valid JSON: %v", err)
		}
	}
	if p.Spec.Input != nil {
		if v == nil {
			v = map[string]any{}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, nil, bad("input must be a JSON object, got %s", kindOf(v))
		}
		out := make(map[string]any, len(p.Spec.Input))
		for k := range obj {
			if _, ok := p.Spec.Input[k]; !ok {
				return nil, nil, bad("input field %q is not declared by the template (declared: %s)", k, strings.Join(p.inputs, ", "))
			}
		}
		for _, name := range p.inputs {
			f := p.Spec.Input[name]
			x, ok := obj[name]
			switch {
			case !ok && f.Default != nil:
				x = f.Default
			case !ok && f.Required:
				return nil, nil, bad("input field %q is required", name)
			case !ok && p.usedBy[name] != "":
				return nil, nil, bad("input field %q is missing: the template uses it (%s) and gives it no default; pass it, or give it a default or required: true in the template", name, p.usedBy[name])
			case !ok:
				continue
			}
			c, err := f.coerce(name, x)
			if err != nil {
				return nil, nil, bad("%v", err)
			}
			out[name] = c
		}
		v = out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, bad("input: %v", err)
	}
	// Decode the canonical bytes: the value seen by mappings is exactly
	// what a replay after a restart will see.
	var back any
	_ = json.Unmarshal(b, &back)
	return b, back, nil
}
