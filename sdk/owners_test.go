package sdk

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shoalrt/shoal/actors/request"
	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
)

// The client's owner choice is the routers' for random tasks and member
// sets: the view built from a Status (members, digest fields) splits a
// batch exactly as the router of every member splits it with its own view
// and its intake's digest configuration. Tasks of type "keyed" are digested
// by one JSON field, so two payloads differing elsewhere share an owner:
// the client must have taken the digest fields from the Status.
func TestOwnerSplitMatchesRouters(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 9))
	fields := map[string][]string{"keyed": {"k"}}
	for round := range 50 {
		n := 2 + rng.IntN(6)
		st := &messages.Status{DigestFields: fields}
		var members []route.Member
		for i := range n {
			m := route.Member{Name: fmt.Sprintf("node-%d-%d", round, rng.IntN(1000)*10+i), Remote: fmt.Sprintf("127.0.0.1:%d", 7000+i)}
			members = append(members, m)
			st.Members = append(st.Members, messages.MemberStatus{Name: m.Name, Remote: m.Remote})
		}
		dialled := rng.IntN(n)
		st.Node = members[dialled].Name
		ov := newOwnerView(members[dialled].Remote, st)
		if ov == nil {
			t.Fatalf("round %d: no view over %d members", round, n)
		}
		sub := &messages.Submit{Version: messages.ProtocolVersion}
		for i := range 300 {
			typ, payload := "plain", fmt.Appendf(nil, "p-%d-%d", round, rng.Uint64())
			if i%3 == 0 {
				typ, payload = "keyed", fmt.Appendf(nil, `{"k": %d, "noise": %d}`, rng.IntN(50), rng.Uint64())
			}
			sub.Tasks = append(sub.Tasks, messages.TaskSpec{Type: typ, Payload: payload, Priority: messages.DefaultPriority})
		}
		got := ownersOf(ov.split(sub), len(sub.Tasks))
		cfg := request.DefaultConfig()
		cfg.DigestFields = fields
		for _, self := range members {
			v := route.NewView(self.Name, self.Remote, partition.DefaultCount, members)
			m := request.New(cfg, 0)
			var want []string
			for _, tk := range sub.Tasks {
				want = append(want, v.OwnerOf(m.Digest(tk.Type, tk.Payload)))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("round %d task %d: client sends it to %q, router of %s to %q", round, i, got[i], self.Name, want[i])
				}
			}
		}
		if len(ov.split(sub)) < 2 {
			t.Fatalf("round %d: 300 tasks over %d members had one owner", round, n)
		}
	}
}

// A batch the default validation refuses is not split: the dialled node
// answers for the whole batch (its typed error, with the client's index).
func TestOwnerSplitLeavesBadBatchWhole(t *testing.T) {
	st := &messages.Status{Node: "a", Members: []messages.MemberStatus{{Name: "a", Remote: "x:1"}, {Name: "b", Remote: "x:2"}}}
	ov := newOwnerView("x:1", st)
	sub := &messages.Submit{Version: messages.ProtocolVersion, Tasks: []messages.TaskSpec{{Type: "t", Payload: []byte("ok")}, {Type: "", Payload: []byte("no type")}}}
	if parts := ov.split(sub); parts != nil {
		t.Fatalf("a batch with an empty task type was split: %v", parts)
	}
	if newOwnerView("x:1", &messages.Status{Node: "a", Members: st.Members[:1]}) != nil {
		t.Fatal("a one-member cluster got a routing view")
	}
}

func ownersOf(parts []route.Part, n int) []string {
	out := make([]string, n)
	for _, p := range parts {
		for _, i := range p.Index {
			out[i] = p.Member
		}
	}
	return out
}
