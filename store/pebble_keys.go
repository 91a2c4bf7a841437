package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Key layout of the Pebble store. Ids are big-endian so that byte order is id
// order and every prefix scan returns records in ascending id order.
//
//	t/<id be8>            → task.Record   (one per accepted task)
//	p/<class 1B><id be8>  → empty        (pending index: task not finished)
//	r/<id be8>            → task.Result (one per finished task)
//	s/<id be8>            → be4          (attempts started, when more than
//	                        the t/ record counts; Batch.Starts; removed
//	                        by Sweep with the task's t/ and r/)
//	m/maxid               → be8          (largest task id ever committed)
//	m/paused              → msgpack task.Paused (types and classes held
//	                        back from dispatch; absent: none)
//
// Records are msgpack arrays, see pebble_codec.go.
//
// A task's t/ and p/ entries are written in the same batch; its r/ entry is
// written together with the deletion of its p/ entry. m/maxid only grows and is
// never swept, so ids are not reused after Sweep removed every record.
const (
	taskKeyLen    = 2 + 8
	pendingKeyLen = 2 + 1 + 8
	resultKeyLen  = 2 + 8
	startKeyLen   = 2 + 8
)

var (
	taskPrefix    = []byte("t/")
	pendingPrefix = []byte("p/")
	resultPrefix  = []byte("r/")
	startPrefix   = []byte("s/")
	maxIDKey      = []byte("m/maxid")
	pausedKey     = []byte("m/paused")
)

func taskKey(id uint64) []byte {
	k := make([]byte, taskKeyLen)
	putTaskKey(k, id)
	return k
}

func startKey(id uint64) []byte {
	k := make([]byte, startKeyLen)
	putStartKey(k, id)
	return k
}

func resultKey(id uint64) []byte {
	k := make([]byte, resultKeyLen)
	putResultKey(k, id)
	return k
}

func pendingKey(c messages.Class, id uint64) []byte {
	k := make([]byte, pendingKeyLen)
	putPendingKey(k, c, id)
	return k
}

// putTaskKey, putResultKey and putPendingKey write a key into k, which has
// the key's length.
func putTaskKey(k []byte, id uint64) {
	k[0], k[1] = 't', '/'
	binary.BigEndian.PutUint64(k[2:], id)
}

func putResultKey(k []byte, id uint64) {
	k[0], k[1] = 'r', '/'
	binary.BigEndian.PutUint64(k[2:], id)
}

func putStartKey(k []byte, id uint64) {
	k[0], k[1] = 's', '/'
	binary.BigEndian.PutUint64(k[2:], id)
}

func putPendingKey(k []byte, c messages.Class, id uint64) {
	k[0], k[1], k[2] = 'p', '/', byte(c)
	binary.BigEndian.PutUint64(k[3:], id)
}

// pendingClassPrefix is p/<class>: every pending entry of one class.
func pendingClassPrefix(c messages.Class) []byte {
	return append(append([]byte(nil), pendingPrefix...), byte(c))
}

// prefixEnd returns the smallest key greater than every key with prefix p, for
// use as an exclusive iterator upper bound.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// idOf extracts the trailing big-endian id of a t/, r/ or p/ key.
func idOf(k []byte) (uint64, bool) {
	if len(k) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[len(k)-8:]), true
}

func be8(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// keyString renders a key for error messages and logs: t/42, r/42,
// p/normal/42, or the quoted bytes of anything else.
func keyString(k []byte) string {
	switch {
	case len(k) == taskKeyLen && bytes.HasPrefix(k, taskPrefix),
		len(k) == resultKeyLen && bytes.HasPrefix(k, resultPrefix),
		len(k) == startKeyLen && bytes.HasPrefix(k, startPrefix):
		id, _ := idOf(k)
		return fmt.Sprintf("%s%d", k[:2], id)
	case len(k) == pendingKeyLen && bytes.HasPrefix(k, pendingPrefix):
		id, _ := idOf(k)
		return fmt.Sprintf("p/%s/%d", messages.Class(k[2]), id)
	}
	return fmt.Sprintf("%q", k)
}
