package route

import (
	"encoding/binary"
	"fmt"

	"github.com/zeebo/blake3"
)

// Task ids tell every node where a task lives. A task id is a uint64:
//
//	bits 63..48  the holder's node tag (16 bits)
//	bits 47..0   the holder's sequence (2^48 ids: 44 years at 200,000 tasks/s)
//
// The tag is derived from the node's name (Tag), so it is the same every
// time the node starts and needs no coordination. Tag 0 is reserved for a
// node running without a cluster: its ids are the small numbers 1, 2, 3 …
// as before, and a clustered node serves tag-0 ids itself (a store written
// before the node joined a cluster keeps working).
//
// Collision safety: two names can hash to the same tag (about one pair in
// 65,536 for two nodes). A node checks the tags of the live members when it
// joins and refuses to start if its tag is taken by another name
// (CheckTags); the routing view also logs any collision it sees. A store
// remembers its tag through its ids: a node refuses to open a store whose
// ids carry another node's tag (FirstID), so a data directory always
// belongs to one node name.
const (
	TagBits = 16
	SeqBits = 64 - TagBits
	SeqMask = 1<<SeqBits - 1
)

// Tag is the node tag of a node name: the first 16 bits of blake3(name),
// never 0.
func Tag(name string) uint16 {
	sum := blake3.Sum256([]byte(name))
	t := binary.BigEndian.Uint16(sum[:2])
	if t == 0 {
		t = 1
	}
	return t
}

// TagOf is the holder tag of a task id.
func TagOf(id uint64) uint16 { return uint16(id >> SeqBits) }

// Base is the id below a tag's first id: ids of tag t are Base(t)+1 … .
func Base(tag uint16) uint64 { return uint64(tag) << SeqBits }

// FirstID returns the id high-water mark a node with tag should continue
// from, given its store's largest id. Ids of tag 0 (written without a
// cluster) stay where they are; ids of another tag mean the store belongs
// to another node name, which is refused.
func FirstID(tag uint16, storeMax uint64) (uint64, error) {
	have := TagOf(storeMax)
	switch {
	case have == tag:
		return storeMax, nil
	case have == 0:
		return max(storeMax, Base(tag)), nil
	}
	return 0, fmt.Errorf("route: the store holds ids of node tag %#04x, this node's tag is %#04x: a data directory belongs to one node name; start with the name that wrote it", have, tag)
}

// CheckTags returns an error when another member's name maps to self's tag.
func CheckTags(self string, members []string) error {
	t := Tag(self)
	for _, m := range members {
		if m != self && Tag(m) == t {
			return fmt.Errorf("route: node names %q and %q share the node tag %#04x; task ids could not tell them apart: rename this node", self, m, t)
		}
	}
	return nil
}
