// Package route makes a set of shoal nodes one cluster: which node owns a
// task digest's partition (and so runs dedupe and queues for it), which node
// holds a task id, and the routers that split a client's Submit by owner and
// send Wait and Cancel to the holders. See docs/cluster.md.
package route

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/task"
)

// Member is a live cluster member as routing needs it.
type Member struct {
	Name   string
	Remote string // protoactor address
}

// View is one immutable routing state: the partition table over the live
// members, and where each member and node tag lives. Readers load it once
// per request; an update replaces it whole.
type View struct {
	Self    string
	SelfTag uint16
	Table   partition.Table
	remote  map[string]string // member name → protoactor address
	byTag   map[uint16]string // node tag → member name
	Members []Member          // sorted by name
}

// NewView computes the view of self over members (self is added if absent,
// with remote selfRemote).
func NewView(self, selfRemote string, count int, members []Member) *View {
	v := &View{Self: self, SelfTag: Tag(self), remote: map[string]string{}, byTag: map[uint16]string{}}
	seen := false
	for _, m := range members {
		if m.Name == self {
			seen = true
			if m.Remote == "" {
				m.Remote = selfRemote
			}
		}
		v.Members = append(v.Members, m)
	}
	if !seen {
		v.Members = append(v.Members, Member{Name: self, Remote: selfRemote})
	}
	slices.SortFunc(v.Members, func(a, b Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	names := make([]string, 0, len(v.Members))
	for _, m := range v.Members {
		names = append(names, m.Name)
		v.remote[m.Name] = m.Remote
		t := Tag(m.Name)
		if prev, ok := v.byTag[t]; !ok || m.Name < prev {
			v.byTag[t] = m.Name // a collision: the smaller name wins everywhere alike
		}
	}
	v.Table, _ = partition.Compute(count, names)
	return v
}

// Solo reports whether this node owns every partition (no peer is live).
func (v *View) Solo() bool { return len(v.Members) <= 1 }

// OwnerOf is the member owning digest d's partition.
func (v *View) OwnerOf(d task.Digest) string {
	return v.Table.Owners[partition.Of(d, len(v.Table.Owners))]
}

// Remote is a member's protoactor address ("" if not live).
func (v *View) Remote(name string) string { return v.remote[name] }

// Holder is the member holding task id, "" when no live member has its tag.
// Tag 0 (ids written without a cluster) and this node's tag are held here.
func (v *View) Holder(id uint64) string {
	t := TagOf(id)
	if t == 0 || t == v.SelfTag {
		return v.Self
	}
	return v.byTag[t]
}

// Owned counts the partitions each member owns.
func (v *View) Owned() map[string]int {
	out := map[string]int{}
	for _, o := range v.Table.Owners {
		out[o]++
	}
	return out
}

// OwnerChange is called with the previous view, the new one and the
// partitions that changed owner. It is the one place that reacts to a new
// partition table (see Directory.Watch).
type OwnerChange func(prev, next *View, moves []partition.Move)

// Directory holds the current View and tells watchers of owner changes.
// Safe for concurrent use; Update is meant to be called from one goroutine
// (the membership poller).
type Directory struct {
	self, remote string
	count        int
	cur          atomic.Pointer[View]
	mu           sync.Mutex
	watchers     []OwnerChange
	log          *slog.Logger
}

// NewDirectory returns a directory whose first view has only self.
func NewDirectory(self, selfRemote string, count int, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if count <= 0 {
		count = partition.DefaultCount
	}
	d := &Directory{self: self, remote: selfRemote, count: count, log: log}
	d.cur.Store(NewView(self, selfRemote, count, nil))
	return d
}

// View is the current view.
func (d *Directory) View() *View { return d.cur.Load() }

// Watch registers fn to be called after every owner change, in Update's
// goroutine, in registration order.
func (d *Directory) Watch(fn OwnerChange) {
	d.mu.Lock()
	d.watchers = append(d.watchers, fn)
	d.mu.Unlock()
}

// Update installs the view of members when it differs from the current one
// and tells the watchers. It returns the partitions that moved.
func (d *Directory) Update(members []Member) []partition.Move {
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.cur.Load()
	next := NewView(d.self, d.remote, d.count, members)
	if slices.Equal(prev.Members, next.Members) {
		return nil
	}
	for t, name := range next.byTag {
		for _, m := range next.Members {
			if m.Name != name && Tag(m.Name) == t {
				d.log.Error("node tag collision: task ids of these nodes cannot be told apart; rename one", "tag", t, "node", name, "other", m.Name)
			}
		}
	}
	d.cur.Store(next)
	moves := prev.Table.Diff(next.Table)
	for _, w := range d.watchers {
		w(prev, next, moves)
	}
	return moves
}
