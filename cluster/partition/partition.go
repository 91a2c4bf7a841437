// Package partition maps task digests onto a fixed number of virtual
// partitions and partitions onto live members by rendezvous (highest random
// weight) hashing: every node computes the same owner from the same member
// list, and a member joining or leaving moves only the partitions it gains or
// loses (about 1/N of them), never shuffling the rest.
//
// cluster/route routes tasks by it (docs/cluster.md).
package partition

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/zeebo/blake3"
)

// DefaultCount is the number of virtual partitions: enough that load spreads
// evenly over tens of nodes, few enough that ownership tables stay small.
const DefaultCount = 256

// Of returns the partition of a digest (its first 8 bytes, mod count).
func Of(digest [32]byte, count int) int {
	return int(binary.BigEndian.Uint64(digest[:8]) % uint64(count))
}

// weight is the rendezvous score of member for partition p.
func weight(p int, member string) uint64 {
	h := blake3.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(p))
	h.Write(b[:])
	h.WriteString(member)
	var sum [32]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint64(sum[:8])
}

// Owner returns the member owning partition p, or "" with no members.
// Ties (astronomically rare) go to the smaller name, so every node agrees.
func Owner(p int, members []string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := weight(p, m)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// Table is the owner of every partition for one member list.
type Table struct {
	Owners []string // Owners[p] owns partition p
}

// Compute builds the table for count partitions over members.
func Compute(count int, members []string) (Table, error) {
	if count <= 0 {
		return Table{}, fmt.Errorf("partition: count must be > 0, got %d", count)
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	t := Table{Owners: make([]string, count)}
	for p := range t.Owners {
		t.Owners[p] = Owner(p, ms)
	}
	return t, nil
}

// Owned lists the partitions member owns.
func (t Table) Owned(member string) []int {
	var out []int
	for p, o := range t.Owners {
		if o == member {
			out = append(out, p)
		}
	}
	return out
}

// Move is a partition changing owner.
type Move struct {
	Partition int
	From, To  string // "" when there was (or is) no owner
}

// Diff lists the partitions whose owner differs from t to next.
func (t Table) Diff(next Table) []Move {
	var out []Move
	for p := range min(len(t.Owners), len(next.Owners)) {
		if t.Owners[p] != next.Owners[p] {
			out = append(out, Move{Partition: p, From: t.Owners[p], To: next.Owners[p]})
		}
	}
	return out
}
