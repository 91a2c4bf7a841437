package partition

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestOwnerIsOrderIndependent(t *testing.T) {
	a := []string{"n1", "n2", "n3", "n4"}
	b := []string{"n3", "n1", "n4", "n2", "n1"}
	ta, _ := Compute(DefaultCount, a)
	tb, _ := Compute(DefaultCount, b)
	if d := ta.Diff(tb); len(d) != 0 {
		t.Fatalf("member order changed ownership: %v", d)
	}
}

func TestSpreadIsEven(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4"}
	tab, _ := Compute(DefaultCount, members)
	for _, m := range members {
		if n := len(tab.Owned(m)); n < DefaultCount/4/2 || n > DefaultCount/4*2 {
			t.Errorf("%s owns %d of %d partitions", m, n, DefaultCount)
		}
	}
}

// A member joining takes partitions only for itself, and one leaving gives
// away only its own: nothing else moves.
func TestMinimalMoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 2 + rng.IntN(8)
		var members []string
		for i := range n {
			members = append(members, fmt.Sprintf("node-%d-%d", trial, i))
		}
		before, _ := Compute(DefaultCount, members)
		joined := fmt.Sprintf("node-%d-new", trial)
		after, _ := Compute(DefaultCount, append(members, joined))
		for _, m := range before.Diff(after) {
			if m.To != joined {
				t.Fatalf("join moved partition %d from %s to %s", m.Partition, m.From, m.To)
			}
		}
		gone := members[rng.IntN(n)]
		var rest []string
		for _, m := range members {
			if m != gone {
				rest = append(rest, m)
			}
		}
		left, _ := Compute(DefaultCount, rest)
		for _, m := range before.Diff(left) {
			if m.From != gone {
				t.Fatalf("leave moved partition %d from %s (not the leaver %s)", m.Partition, m.From, gone)
			}
		}
		if len(before.Owned(gone)) != len(before.Diff(left)) {
			t.Fatalf("leaver owned %d partitions, %d moved", len(before.Owned(gone)), len(before.Diff(left)))
		}
	}
}

func TestEdges(t *testing.T) {
	if Owner(3, nil) != "" {
		t.Fatal("owner without members")
	}
	if _, err := Compute(0, []string{"a"}); err == nil {
		t.Fatal("zero partitions accepted")
	}
	var d [32]byte
	d[7] = 5
	if Of(d, 4) != 1 {
		t.Fatalf("Of = %d", Of(d, 4))
	}
}
