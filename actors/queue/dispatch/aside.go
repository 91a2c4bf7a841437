package dispatch

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// asideLists is the unplaceable side: the cache of which type and
// requirement shape some executor can run, and the tasks set aside, per
// shape, because none can, with the filters' refusals that say why.
type asideLists struct {
	shapes map[asideKey]bool // type and requirement shape → some executor can run it
	aside  map[asideKey]*setAside
	asideN int
}

// asideKey is what placeability depends on: the task type (executors may
// run only some types) and the requirement shape.
type asideKey struct{ typ, shape string }

// setAside is the tasks of one unplaceable type and requirement shape.
type setAside struct {
	reqs    map[string]string // without the size key
	entries []*entry
	since   int64
	refused task.Refusals // which filter refused which executors
}

func newAsideLists() asideLists {
	return asideLists{shapes: map[asideKey]bool{}, aside: map[asideKey]*setAside{}}
}

// add sets e aside under k; a new list is explained by why().
func (a *asideLists) add(ts int64, k asideKey, e *entry, why func() task.Refusals) {
	g := a.aside[k]
	if g == nil {
		req := maps.Clone(e.rec.Requirements)
		delete(req, messages.ReqSize)
		g = &setAside{reqs: req, since: ts, refused: why()}
		a.aside[k] = g
	}
	g.entries = append(g.entries, e)
	a.asideN++
}

// take removes the list under k and returns its tasks.
func (a *asideLists) take(k asideKey) []*entry {
	g := a.aside[k]
	delete(a.aside, k)
	a.asideN -= len(g.entries)
	return g.entries
}

// remove takes id out of the set-aside lists.
func (a *asideLists) remove(id uint64) *entry {
	for k, g := range a.aside {
		if i := slices.IndexFunc(g.entries, func(e *entry) bool { return e.rec.ID == id }); i >= 0 {
			e := g.entries[i]
			g.entries = slices.Delete(g.entries, i, i+1)
			a.asideN--
			if len(g.entries) == 0 {
				delete(a.aside, k)
			}
			return e
		}
	}
	return nil
}

// of is the list id is set aside in (nil if it is not).
func (a *asideLists) of(id uint64) (asideKey, *setAside) {
	if a.asideN == 0 {
		return asideKey{}, nil
	}
	for k, g := range a.aside {
		if slices.ContainsFunc(g.entries, func(e *entry) bool { return e.rec.ID == id }) {
			return k, g
		}
	}
	return asideKey{}, nil
}

// reason is the human explanation of a set-aside list.
func reason(k asideKey, g *setAside) string {
	return fmt.Sprintf("unplaceable: no registered executor running %q tasks satisfies %s [%s]", k.typ, k.shape, g.refused.String())
}

// list describes the set-aside shapes, most tasks first.
func (a *asideLists) list() []task.Unplaceable {
	out := make([]task.Unplaceable, 0, len(a.aside))
	for k, g := range a.aside {
		out = append(out, task.Unplaceable{Type: k.typ, Shape: k.shape, Requirements: maps.Clone(g.reqs), Tasks: len(g.entries), Since: g.since,
			Refused: slices.Clone(g.refused), Reason: reason(k, g)})
	}
	slices.SortFunc(out, func(a, b task.Unplaceable) int {
		if a.Tasks != b.Tasks {
			return b.Tasks - a.Tasks
		}
		if c := strings.Compare(a.Shape, b.Shape); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}
