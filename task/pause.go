package task

import (
	"fmt"
	"slices"

	"github.com/shoalrt/shoal/messages"
)

// Paused is the set of task types and priority classes held back from
// dispatch (messages.Pause): their tasks stay durable and queued, none is
// granted. It is kept in the store (store.Batch.Paused) so that it
// survives a restart. The zero value pauses nothing.
type Paused struct {
	Types   []string         `msgpack:"types,omitempty"`
	Classes []messages.Class `msgpack:"classes,omitempty"`
}

// Empty reports whether nothing is paused.
func (p Paused) Empty() bool { return len(p.Types) == 0 && len(p.Classes) == 0 }

// Type reports whether typ is paused.
func (p Paused) Type(typ string) bool { return slices.Contains(p.Types, typ) }

// Class reports whether c is paused.
func (p Paused) Class(c messages.Class) bool { return slices.Contains(p.Classes, c) }

// With returns p with types and classes added (resume false) or removed
// (resume true), sorted and without repeats; p is not modified.
func (p Paused) With(types []string, classes []messages.Class, resume bool) Paused {
	out := Paused{Types: slices.Clone(p.Types), Classes: slices.Clone(p.Classes)}
	if resume {
		out.Types = slices.DeleteFunc(out.Types, func(t string) bool { return slices.Contains(types, t) })
		out.Classes = slices.DeleteFunc(out.Classes, func(c messages.Class) bool { return slices.Contains(classes, c) })
	} else {
		out.Types = append(out.Types, types...)
		out.Classes = append(out.Classes, classes...)
	}
	slices.Sort(out.Types)
	slices.Sort(out.Classes)
	out.Types = slices.Compact(out.Types)
	out.Classes = slices.Compact(out.Classes)
	if len(out.Types) == 0 {
		out.Types = nil
	}
	if len(out.Classes) == 0 {
		out.Classes = nil
	}
	return out
}

// ClassNames are the paused classes by name ("high", "normal", "low").
func (p Paused) ClassNames() []string {
	var out []string
	for _, c := range p.Classes {
		out = append(out, c.String())
	}
	return out
}

// ParseClass reads a class name: "high", "normal" or "low".
func ParseClass(name string) (messages.Class, error) {
	for c := range messages.Class(messages.NumClasses) {
		if c.String() == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown priority class %q: use high, normal or low", name)
}

// ParsePause checks a Pause request: types non-empty, classes by name.
func ParsePause(p *messages.Pause) ([]messages.Class, error) {
	if len(p.Types) == 0 && len(p.Classes) == 0 {
		return nil, fmt.Errorf("pause: name at least one task type or priority class")
	}
	for _, t := range p.Types {
		if t == "" {
			return nil, fmt.Errorf("pause: a task type is empty")
		}
	}
	classes := make([]messages.Class, 0, len(p.Classes))
	for _, name := range p.Classes {
		c, err := ParseClass(name)
		if err != nil {
			return nil, fmt.Errorf("pause: %w", err)
		}
		classes = append(classes, c)
	}
	return classes, nil
}
