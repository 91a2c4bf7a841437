package messages

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// marshal is msgpack.Marshal with a pooled buffer: the message is encoded
// into a reused buffer and copied out at its exact size. msgpack.Marshal
// grows a fresh buffer by doubling from 64 bytes, which for a forwarded
// batch of a few hundred tasks allocated about twice the message's size per
// message (a tenth of a cluster node's allocations in W1).
func marshal(msg any) ([]byte, error) {
	buf := marshalBufs.Get().(*bytes.Buffer)
	buf.Reset()
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	err := enc.Encode(msg)
	msgpack.PutEncoder(enc)
	var out []byte
	if err == nil {
		out = bytes.Clone(buf.Bytes())
	}
	if buf.Cap() <= maxPooledBuffer {
		marshalBufs.Put(buf)
	}
	return out, err
}

// maxPooledBuffer keeps one huge message from pinning its buffer in the pool.
const maxPooledBuffer = 4 << 20

var marshalBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
