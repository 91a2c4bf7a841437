package flow

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The mapping language builds a step's arguments and the flow's output from
// the flow's input and earlier steps' results. A mapping is any JSON/YAML
// value; inside it:
//
//   - a string that is exactly a reference is replaced by the referenced
//     value, whatever its type: "$input", "$input.user.name",
//     "$steps.fetch" (the whole result of step fetch), "$steps.fetch.items.0";
//   - "${ref}" inside a longer string is replaced by the value as text
//     (strings as they are, anything else as compact JSON):
//     "thumb-${input.size}-${steps.fetch.id}";
//   - "$$" is a literal "$";
//   - objects and arrays are mapped element by element; other values are
//     literals.
//
// A path segment is an object field or, on an array, a zero-based index.
// A step's result is parsed as JSON when it is valid JSON, else it is the
// string of its bytes.

// env is what a mapping is evaluated against.
type env struct {
	input   any
	outputs []any // by step index; valid for the steps a mapping depends on
}

// expr is a compiled mapping.
type expr interface {
	eval(e *env) (any, error)
}

type literal struct{ v any }

func (l literal) eval(*env) (any, error) { return l.v, nil }

// ref is "$input…" (step < 0) or "$steps.<name>…".
type ref struct {
	text string // as written, for errors
	step int    // -1: the input
	path []string
}

func (r ref) eval(e *env) (any, error) {
	v := e.input
	if r.step >= 0 {
		v = e.outputs[r.step]
	}
	for i, seg := range r.path {
		switch x := v.(type) {
		case map[string]any:
			f, ok := x[seg]
			if !ok {
				return nil, fmt.Errorf("%s: no field %q at %s", r.text, seg, r.prefix(i))
			}
			v = f
		case []any:
			k, err := strconv.Atoi(seg)
			if err != nil || k < 0 || k >= len(x) {
				return nil, fmt.Errorf("%s: %s has %d elements, no index %q", r.text, r.prefix(i), len(x), seg)
			}
			v = x[k]
		default:
			return nil, fmt.Errorf("%s: %s is %s, not an object or array", r.text, r.prefix(i), kindOf(v))
		}
	}
	return v, nil
}

func (r ref) prefix(i int) string {
	head := "$input"
	if r.step >= 0 {
		head = strings.Join(strings.SplitN(r.text, ".", 3)[:2], ".")
	}
	if i == 0 {
		return head
	}
	return head + "." + strings.Join(r.path[:i], ".")
}

// interp is a string with "${ref}" parts.
type interp struct {
	lits []string // len(refs)+1
	refs []ref
}

func (s interp) eval(e *env) (any, error) {
	var b strings.Builder
	for i, r := range s.refs {
		b.WriteString(s.lits[i])
		v, err := r.eval(e)
		if err != nil {
			return nil, err
		}
		b.WriteString(text(v))
	}
	b.WriteString(s.lits[len(s.refs)])
	return b.String(), nil
}

type object struct {
	keys []string
	vals []expr
}

func (o object) eval(e *env) (any, error) {
	out := make(map[string]any, len(o.keys))
	for i, k := range o.keys {
		v, err := o.vals[i].eval(e)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

type array []expr

func (a array) eval(e *env) (any, error) {
	out := make([]any, len(a))
	for i, x := range a {
		v, err := x.eval(e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// text renders a value inside an interpolated string.
func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64, json.Number, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

var (
	wholeRef = regexp.MustCompile(`^\$(input|steps\.[A-Za-z0-9_-]+)(\.[^.${}]+)*$`)
	innerRef = regexp.MustCompile(`\$\{([^{}]*)\}`)
)

// refs collects what a mapping refers to.
type refs struct {
	steps  map[string]bool
	inputs map[string]bool // top-level input fields ("" for the whole input)
}

// compiler resolves step names while compiling mappings.
type compiler struct {
	stepIndex map[string]int
	refs      refs
}

func (c *compiler) compile(v any, where string) (expr, error) {
	switch x := v.(type) {
	case string:
		return c.compileString(x, where)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := object{keys: keys, vals: make([]expr, len(keys))}
		for i, k := range keys {
			e, err := c.compile(x[k], where+"."+k)
			if err != nil {
				return nil, err
			}
			o.vals[i] = e
		}
		return o, nil
	case []any:
		a := make(array, len(x))
		for i, el := range x {
			e, err := c.compile(el, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return nil, err
			}
			a[i] = e
		}
		return a, nil
	}
	return literal{v}, nil
}

func (c *compiler) compileString(s, where string) (expr, error) {
	if wholeRef.MatchString(s) {
		return c.parseRef(s[1:], where)
	}
	if !strings.Contains(s, "$") {
		return literal{s}, nil
	}
	// Protect "$$" while finding "${…}".
	const esc = "\x00"
	t := strings.ReplaceAll(s, "$$", esc)
	locs := innerRef.FindAllStringSubmatchIndex(t, -1)
	unesc := func(p string) string { return strings.ReplaceAll(p, esc, "$") }
	if len(locs) == 0 {
		return literal{unesc(t)}, nil
	}
	var in interp
	last := 0
	for _, l := range locs {
		in.lits = append(in.lits, unesc(t[last:l[0]]))
		r, err := c.parseRef(t[l[2]:l[3]], where)
		if err != nil {
			return nil, err
		}
		in.refs = append(in.refs, r)
		last = l[1]
	}
	in.lits = append(in.lits, unesc(t[last:]))
	return in, nil
}

// parseRef parses "input…" or "steps.<name>…" (without the leading "$").
func (c *compiler) parseRef(s, where string) (ref, error) {
	parts := strings.Split(s, ".")
	r := ref{text: "$" + s, step: -1}
	switch {
	case parts[0] == "input":
		r.path = parts[1:]
		field := ""
		if len(r.path) > 0 {
			field = r.path[0]
		}
		c.refs.inputs[field] = true
	case parts[0] == "steps" && len(parts) >= 2:
		k, ok := c.stepIndex[parts[1]]
		if !ok {
			return ref{}, fmt.Errorf("%s: $%s refers to step %q, which the template does not have", where, s, parts[1])
		}
		r.step, r.path = k, parts[2:]
		c.refs.steps[parts[1]] = true
	default:
		return ref{}, fmt.Errorf("%s: $%s is not a reference: use $input.<field> or $steps.<step>.<field>", where, s)
	}
	for _, p := range r.path {
		if p == "" {
			return ref{}, fmt.Errorf("%s: $%s has an empty path segment", where, s)
		}
	}
	return r, nil
}
