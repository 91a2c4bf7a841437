package flow

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/shoalrt/shoal/messages"
)

// Registry holds the templates by name, every version compiled once
// (templates are cached by type, S2.2). It is safe for concurrent use.
// Templates live in memory: a node loads its --flows directory at start and
// clients may register more; a flow already started carries its template in
// its task, so it resumes after a restart whether or not its template was
// registered again.
type Registry struct {
	opts   CompileOptions
	mu     sync.RWMutex
	byName map[string][]*Plan // versions in order: [i] is version i+1
	// MaxVersions bounds the versions kept per name (the oldest are
	// forgotten; flows that run them are unaffected). Default 16.
	maxVersions int
}

// NewRegistry returns an empty registry compiling with o.
func NewRegistry(o CompileOptions) *Registry {
	return &Registry{opts: o, byName: map[string][]*Plan{}, maxVersions: 16}
}

// Register parses, validates and registers a template. The same canonical
// text as the latest version returns that version; a different one becomes
// the next version.
func (r *Registry) Register(text []byte) (*Plan, error) {
	s, err := ParseSpec(text)
	if err != nil {
		return nil, err
	}
	p, err := Compile(s, r.opts)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.byName[s.Name]
	if n := len(vs); n > 0 && bytes.Equal(vs[n-1].Canonical, p.Canonical) {
		return vs[n-1], nil
	}
	p.Version = 1
	if n := len(vs); n > 0 {
		p.Version = vs[n-1].Version + 1
	}
	vs = append(vs, p)
	if len(vs) > r.maxVersions {
		vs = vs[len(vs)-r.maxVersions:]
	}
	r.byName[s.Name] = vs
	return p, nil
}

// Get returns a template version (0: the latest).
func (r *Registry) Get(name string, version int32) (*Plan, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.byName[name]
	if len(vs) == 0 {
		return nil, messages.Errorf(messages.CodeNotFound, "no flow template named %q; register it first (shoal flow templates lists them)", name)
	}
	if version == 0 {
		return vs[len(vs)-1], nil
	}
	for _, p := range vs {
		if p.Version == version {
			return p, nil
		}
	}
	return nil, messages.Errorf(messages.CodeNotFound, "flow template %s has no version %d (latest %d)", name, version, vs[len(vs)-1].Version)
}

// List returns the latest version of each template (every kept version
// with all), sorted by name and version.
func (r *Registry) List(all bool) []messages.TemplateInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []messages.TemplateInfo
	for _, vs := range r.byName {
		if all {
			for _, p := range vs {
				out = append(out, p.Info())
			}
		} else {
			out = append(out, vs[len(vs)-1].Info())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// LoadDir registers every *.yaml, *.yml and *.json file of dir, in name
// order. An invalid file fails the load with an error naming it.
func (r *Registry) LoadDir(dir string) ([]*Plan, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("flows: read template directory: %w", err)
	}
	var out []*Plan
	for _, e := range ents {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("flows: %w", err)
		}
		p, err := r.Register(b)
		if err != nil {
			return nil, fmt.Errorf("flows: %s: %w", path, err)
		}
		out = append(out, p)
	}
	return out, nil
}
