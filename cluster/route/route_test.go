package route

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

func TestTagsAndIDs(t *testing.T) {
	seen := map[uint16]string{}
	for i := range 200 {
		name := fmt.Sprintf("node-%d", i)
		tag := Tag(name)
		if tag == 0 {
			t.Fatalf("Tag(%q) = 0, reserved for unclustered nodes", name)
		}
		if Tag(name) != tag {
			t.Fatalf("Tag(%q) not stable", name)
		}
		seen[tag] = name
		id := Base(tag) + 12345
		if TagOf(id) != tag || id&SeqMask != 12345 {
			t.Fatalf("id %#x: tag %#x seq %d", id, TagOf(id), id&SeqMask)
		}
	}
	if len(seen) < 195 {
		t.Errorf("200 names gave only %d distinct tags", len(seen))
	}
}

func TestFirstID(t *testing.T) {
	tag := Tag("n1")
	cases := []struct {
		name     string
		storeMax uint64
		want     uint64
		err      bool
	}{
		{"fresh store", 0, Base(tag), false},
		{"store written without a cluster", 5000, Base(tag), false},
		{"own ids continue", Base(tag) + 77, Base(tag) + 77, false},
		{"another node's store", Base(tag^0x0101) + 3, 0, true},
	}
	for _, c := range cases {
		got, err := FirstID(tag, c.storeMax)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s: FirstID = %#x, %v; want %#x, err %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestCheckTagsFindsCollision(t *testing.T) {
	// Find two names sharing a tag (birthday search, a few hundred tries).
	byTag := map[uint16]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("host-%d", i)
		if o, ok := byTag[Tag(n)]; ok {
			a, b = o, n
		}
		byTag[Tag(n)] = n
	}
	if err := CheckTags(a, []string{a, b, "x"}); err == nil {
		t.Fatalf("%q and %q share tag %#x but CheckTags accepted", a, b, Tag(a))
	}
	if err := CheckTags(a, []string{a, "x", "y"}); err != nil {
		t.Fatal(err)
	}
	// Both views agree on one holder for the shared tag.
	v1 := NewView(a, "ra", 16, []Member{{b, "rb"}})
	v2 := NewView("x", "rx", 16, []Member{{a, "ra"}, {b, "rb"}})
	id := Base(Tag(a)) + 1
	if v1.Holder(id) != a || v2.Holder(id) != min(a, b) {
		t.Fatalf("holders %q %q", v1.Holder(id), v2.Holder(id))
	}
}

func members(names ...string) []Member {
	var out []Member
	for _, n := range names {
		out = append(out, Member{Name: n, Remote: "addr-" + n})
	}
	return out
}

func TestViewOwnersAndHolders(t *testing.T) {
	v := NewView("b", "addr-b", partition.DefaultCount, members("a", "c"))
	if v.Solo() || len(v.Members) != 3 || v.Members[1].Name != "b" || v.Remote("b") != "addr-b" {
		t.Fatalf("view %+v", v.Members)
	}
	owned := v.Owned()
	if owned["a"]+owned["b"]+owned["c"] != partition.DefaultCount || owned["a"] == 0 || owned["b"] == 0 || owned["c"] == 0 {
		t.Fatalf("owned %v", owned)
	}
	for _, n := range []string{"a", "b", "c"} {
		if got := v.Holder(Base(Tag(n)) + 9); got != n {
			t.Errorf("holder of an id of %s is %q", n, got)
		}
	}
	if v.Holder(42) != "b" {
		t.Errorf("a tag-0 id is held by %q, want this node", v.Holder(42))
	}
	if v.Holder(Base(Tag("gone"))+1) != "" {
		t.Error("an id of a node that is not a member has a holder")
	}
	if !NewView("solo", "r", 8, nil).Solo() {
		t.Error("a view of one node is not solo")
	}
}

func TestDirectoryTellsWatchersOfMoves(t *testing.T) {
	d := NewDirectory("a", "addr-a", 64, nil)
	var calls [][]partition.Move
	d.Watch(func(prev, next *View, moves []partition.Move) { calls = append(calls, moves) })
	if moves := d.Update(members("a")); moves != nil || len(calls) != 0 {
		t.Fatalf("no change still moved %v", moves)
	}
	moves := d.Update(members("a", "b"))
	if len(moves) == 0 || len(calls) != 1 {
		t.Fatalf("join: moves %d, calls %d", len(moves), len(calls))
	}
	for _, m := range moves {
		if m.From != "a" || m.To != "b" {
			t.Fatalf("join moved %+v: only a's partitions may go, only to b", m)
		}
	}
	if d.View().Owned()["b"] != len(moves) {
		t.Fatalf("b owns %d, moved %d", d.View().Owned()["b"], len(moves))
	}
	back := d.Update(members("a"))
	if len(back) != len(moves) || len(calls) != 2 {
		t.Fatalf("leave moved %d back, want %d", len(back), len(moves))
	}
}

func digests(n int, rng *rand.Rand) []task.Digest {
	out := make([]task.Digest, n)
	for i := range out {
		for k := range out[i] {
			out[i][k] = byte(rng.IntN(256))
		}
	}
	return out
}

// Splitting covers every task exactly once, in order, by its owner.
func TestSplitByOwnerProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var ms []Member
		for i := range 1 + rng.IntN(6) {
			ms = append(ms, Member{Name: fmt.Sprintf("m%d", i)})
		}
		v := NewView("m0", "", partition.DefaultCount, ms)
		ds := digests(rng.IntN(300), rng)
		parts := SplitByOwner(v, ds)
		seen := make([]bool, len(ds))
		for pi, p := range parts {
			if pi > 0 && parts[pi-1].Member >= p.Member {
				t.Fatal("parts not in member order")
			}
			for k, i := range p.Index {
				if k > 0 && p.Index[k-1] >= i {
					t.Fatal("part indexes not ascending")
				}
				if seen[i] || v.OwnerOf(ds[i]) != p.Member {
					t.Fatalf("task %d: seen %v, owner %s, part %s", i, seen[i], v.OwnerOf(ds[i]), p.Member)
				}
				seen[i] = true
			}
		}
		for i, s := range seen {
			if !s {
				t.Fatalf("task %d in no part", i)
			}
		}
	}
}

func TestSubmitGather(t *testing.T) {
	a, b := Part{"a", []int{0, 2}}, Part{"b", []int{1}}
	g := NewSubmitGather(3, 2)
	if g.Add(a, &messages.SubmitAck{IDs: []uint64{10, 12}}, nil) {
		t.Fatal("done after one of two parts")
	}
	if !g.Add(b, &messages.SubmitAck{IDs: []uint64{11}}, nil) {
		t.Fatal("not done after both parts")
	}
	if ack := g.Ack(); ack.Err != nil || fmt.Sprint(ack.IDs) != "[10 11 12]" {
		t.Fatalf("ack %+v", ack)
	}

	// A refusal names the client's task index, and wins.
	g = NewSubmitGather(3, 2)
	g.Add(a, &messages.SubmitAck{Err: messages.TaskErrorf(messages.CodeOverloaded, 1, "full")}, nil)
	g.Add(b, &messages.SubmitAck{IDs: []uint64{11}}, nil)
	ack := g.Ack()
	if ack.Err == nil || !errors.Is(ack.Err, messages.ErrOverloaded) || ack.Err.Index != 2 || ack.IDs != nil {
		t.Fatalf("ack %+v", ack)
	}

	// A part that never answered, or answered short, fails the batch.
	g = NewSubmitGather(3, 2)
	g.Add(a, nil, messages.Errorf(messages.CodeUnavailable, "timeout"))
	g.Add(b, &messages.SubmitAck{IDs: []uint64{}}, nil)
	if ack := g.Ack(); !errors.Is(ack.Err, messages.ErrUnavailable) {
		t.Fatalf("ack %+v", ack)
	}
}

func TestOutcomeGather(t *testing.T) {
	ids := []uint64{7, 8, 9}
	a, b, lost := Part{"a", []int{0, 2}}, Part{"b", []int{1}}, Part{"", []int{1}}
	g := NewOutcomeGather(ids, 2)
	g.Add(a, &messages.Outcomes{Outcomes: []messages.Outcome{{TaskID: 7, State: messages.StateDone}, {TaskID: 9, State: messages.StateQueued}}, Err: messages.Errorf(messages.CodeTimeout, "t")}, nil)
	if !g.Add(b, &messages.Outcomes{Outcomes: []messages.Outcome{{TaskID: 8, State: messages.StateDone}}}, nil) {
		t.Fatal("not done")
	}
	out := g.Outcomes()
	if !errors.Is(out.Err, messages.ErrTimeout) || out.Outcomes[1].TaskID != 8 || out.Outcomes[2].State != messages.StateQueued {
		t.Fatalf("out %+v", out)
	}

	g = NewOutcomeGather(ids, 2)
	g.Add(a, &messages.Outcomes{Err: messages.Errorf(messages.CodeTimeout, "t")}, nil)
	g.Lost(lost)
	out = g.Outcomes()
	if !errors.Is(out.Err, messages.ErrUnavailable) || out.Outcomes[1].Error == "" || out.Outcomes[0].TaskID != 7 {
		t.Fatalf("a lost holder must win over a timeout: %+v", out)
	}
}

func TestLoadAndRate(t *testing.T) {
	st := &messages.Status{
		Classes:   []messages.ClassStatus{{Queued: 5}, {Queued: 6}, {Queued: 7}},
		Executors: []messages.ExecutorStatus{{Slots: 8, Leases: 3}, {Slots: 4, Leases: 9}, {ID: "gone", State: messages.ExecFailed}, {ID: "back-soon", State: messages.ExecRestarting}},
		Counters:  map[string]int64{"standby": 11, "done": 100, "dead": 1, "cancelled": 2, "deduplicated": 3},
	}
	l := LoadOf(st, 2.5)
	if l.Queued != [3]int64{5, 6, 7} || l.Standby != 11 || l.FreeSlots != 5 || l.Executors != 2 || l.DrainRate != 2.5 {
		t.Fatalf("load %+v", l)
	}
	if Finished(st) != 106 {
		t.Fatalf("finished %d", Finished(st))
	}
	var r Rate
	t0 := time.Unix(0, 0)
	if r.Observe(t0, 0) != 0 {
		t.Fatal("first observation has no rate")
	}
	r.Observe(t0.Add(time.Second), 1000)
	got := r.Observe(t0.Add(2*time.Second), 2000)
	if got != 750 { // 0.5×1000 + 0.5×(0.5×1000)
		t.Fatalf("rate %v, want 750", got)
	}
}

// Another node's stealer attached here is not this node's capacity: a
// loaded node whose only executor is a stealer reports no free slot, so
// the stealer keeps qualifying it (cluster/steal).
func TestLoadOfLeavesOutStealers(t *testing.T) {
	st := &messages.Status{Executors: []messages.ExecutorStatus{
		{ID: "w1", Slots: 4, Leases: 1},
		{ID: messages.StealExecutorPrefix + "n2", Slots: 8},
		{ID: "w2", Slots: 6, State: messages.ExecDraining},
	}}
	if l := LoadOf(st, 0); l.FreeSlots != 3 {
		t.Fatalf("free slots %d, want 3 (the stealer's 8 and the draining executor's 6 left out)", l.FreeSlots)
	}
}
