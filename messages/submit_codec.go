package messages

import (
	"encoding/binary"
	"math"
)

// Submit's fast codec. Submit is the one message that carries tasks by the
// thousand from clients to nodes and between nodes, and msgpack/v5's
// reflection and per-call interfaces cost about 0.4 µs per task to encode
// and 1.1 µs to decode (two allocations per task), a tenth of a cluster
// node's CPU per task in W1 (docs/benchmarks.md). These functions write and
// read the same bytes directly:
//   - appendSubmit writes exactly what msgpack.Marshal writes for a Submit
//     (a two-key map, non-compact ints as msgpack/v5 writes them,
//     TaskSpec.EncodeMsgpack's arrays), into a buffer sized up front;
//   - decodeSubmit reads the forms msgpack/v5 writes and returns ok=false
//     for anything else (other int widths are read too; unknown or repeated
//     keys, a string where bytes are expected, a value out of its field's
//     range, ...), and Registry.Decode then decodes with msgpack/v5 as
//     before. So it changes no accepted input and no result: FuzzSubmitFast
//     checks that whatever it accepts msgpack/v5 decodes to the same Submit.
//
// Its input has passed CheckShape (every length fits in the bytes left), but
// it checks every bound again itself: it never reads past b.

// appendSubmit appends s's msgpack encoding to b.
func appendSubmit(b []byte, s *Submit) []byte {
	b = append(b, 0x82, 0xa1, 'v', 0xcd, byte(s.Version>>8), byte(s.Version))
	b = append(b, 0xa5, 't', 'a', 's', 'k', 's')
	if s.Tasks == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(s.Tasks))
	for i := range s.Tasks {
		b = appendTaskSpec(b, &s.Tasks[i])
	}
	return b
}

// submitSize bounds appendSubmit's output for s.
func submitSize(s *Submit) int {
	n := 24
	for i := range s.Tasks {
		t := &s.Tasks[i]
		n += 40 + len(t.Type) + len(t.Payload) + len(t.Pin)
		for k, v := range t.Requirements {
			n += 10 + len(k) + len(v)
		}
	}
	return n
}

func appendTaskSpec(b []byte, t *TaskSpec) []byte {
	n := taskSpecFieldsV1
	if t.Size != 0 || t.Pin != "" {
		n = taskSpecFields
	}
	b = append(b, 0x90|byte(n))
	b = appendStr(b, t.Type)
	if t.Payload == nil {
		b = append(b, 0xc0)
	} else {
		b = appendBinLen(b, len(t.Payload))
		b = append(b, t.Payload...)
	}
	b = appendInt32(b, t.Priority)
	if t.Requirements == nil {
		b = append(b, 0xc0)
	} else {
		b = appendMapLen(b, len(t.Requirements))
		for k, v := range t.Requirements {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	b = appendInt32(b, t.MaxAttempts)
	if n == taskSpecFieldsV1 {
		return b
	}
	b = append(b, 0xcb)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(t.Size))
	return appendStr(b, t.Pin)
}

func appendInt32(b []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
}

func appendStr(b []byte, s string) []byte {
	switch l := len(s); {
	case l < 32:
		b = append(b, 0xa0|byte(l))
	case l < 1<<8:
		b = append(b, 0xd9, byte(l))
	case l < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(l))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(l))
	}
	return append(b, s...)
}

func appendBinLen(b []byte, l int) []byte {
	switch {
	case l < 1<<8:
		return append(b, 0xc4, byte(l))
	case l < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(l))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(l))
	}
}

func appendArrayLen(b []byte, l int) []byte {
	switch {
	case l < 16:
		return append(b, 0x90|byte(l))
	case l < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(l))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(l))
	}
}

func appendMapLen(b []byte, l int) []byte {
	switch {
	case l < 16:
		return append(b, 0x80|byte(l))
	case l < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(l))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(l))
	}
}

// fastReader reads msgpack values from b; any read that does not find the
// expected form clears ok, after which every read returns zero values.
type fastReader struct {
	b  []byte
	ok bool
}

func (r *fastReader) fail() { r.ok = false; r.b = nil }

// take returns the next n bytes.
func (r *fastReader) take(n int) []byte {
	if !r.ok || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *fastReader) byte1() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

// length reads a big-endian length of width bytes.
func (r *fastReader) length(width int) int {
	p := r.take(width)
	if p == nil {
		return 0
	}
	switch width {
	case 1:
		return int(p[0])
	case 2:
		return int(binary.BigEndian.Uint16(p))
	default:
		return int(binary.BigEndian.Uint32(p))
	}
}

// isNil consumes a nil if one is next.
func (r *fastReader) isNil() bool {
	if r.ok && len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return true
	}
	return false
}

// int reads any msgpack integer as msgpack/v5 does (uint64 as its bits).
func (r *fastReader) int() int64 {
	c := r.byte1()
	switch {
	case !r.ok:
		return 0
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	}
	switch c {
	case 0xcc:
		return int64(r.byte1())
	case 0xcd:
		return int64(r.length(2))
	case 0xce:
		return int64(r.length(4))
	case 0xcf, 0xd3:
		if p := r.take(8); p != nil {
			return int64(binary.BigEndian.Uint64(p))
		}
	case 0xd0:
		return int64(int8(r.byte1()))
	case 0xd1:
		if p := r.take(2); p != nil {
			return int64(int16(binary.BigEndian.Uint16(p)))
		}
	case 0xd2:
		if p := r.take(4); p != nil {
			return int64(int32(binary.BigEndian.Uint32(p)))
		}
	default:
		r.fail()
	}
	return 0
}

// uint reads a non-negative msgpack integer (msgpack/v5 wraps negative
// ones into a uint64: leave those to it).
func (r *fastReader) uint() uint64 {
	c := r.byte1()
	switch {
	case !r.ok:
		return 0
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return uint64(r.byte1())
	case c == 0xcd:
		return uint64(r.length(2))
	case c == 0xce:
		return uint64(r.length(4))
	case c == 0xcf:
		if p := r.take(8); p != nil {
			return binary.BigEndian.Uint64(p)
		}
		return 0
	}
	r.fail()
	return 0
}

// int32 reads an integer that must fit an int32 (msgpack/v5 would truncate
// a larger one: leave that to it).
func (r *fastReader) int32() int32 {
	v := r.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail()
	}
	return int32(v)
}

// strBytes reads a msgpack str (not nil, not bin: those go to msgpack/v5).
func (r *fastReader) strBytes() []byte {
	c := r.byte1()
	switch {
	case !r.ok:
		return nil
	case c >= 0xa0 && c <= 0xbf:
		return r.take(int(c & 0x1f))
	case c == 0xd9:
		return r.take(r.length(1))
	case c == 0xda:
		return r.take(r.length(2))
	case c == 0xdb:
		return r.take(r.length(4))
	}
	r.fail()
	return nil
}

// containerLen reads an array (base 0x90, codes 0xdc/0xdd) or map (base
// 0x80, codes 0xde/0xdf) header.
func (r *fastReader) containerLen(fix, c16, c32 byte) int {
	c := r.byte1()
	switch {
	case !r.ok:
		return 0
	case c&0xf0 == fix:
		return int(c & 0x0f)
	case c == c16:
		return r.length(2)
	case c == c32:
		return r.length(4)
	}
	r.fail()
	return 0
}

// decodeSubmit decodes b (which passed CheckShape) if it is in the forms
// msgpack/v5 writes for a Submit; ok=false leaves b to msgpack/v5.
func decodeSubmit(b []byte) (*Submit, bool) {
	r := &fastReader{b: b, ok: true}
	s := &Submit{}
	var seenV, seenTasks bool
	for range r.containerLen(0x80, 0xde, 0xdf) {
		switch key := r.strBytes(); {
		case !r.ok:
		case string(key) == "v" && !seenV:
			seenV = true
			v := r.int()
			if v < 0 || v > math.MaxUint16 {
				r.fail()
			}
			s.Version = uint16(v)
		case string(key) == "tasks" && !seenTasks:
			seenTasks = true
			if r.isNil() {
				continue
			}
			n := r.containerLen(0x90, 0xdc, 0xdd)
			if n > len(r.b) { // every task takes at least a byte
				r.fail()
			}
			if !r.ok {
				break
			}
			s.Tasks = make([]TaskSpec, n)
			prev := ""
			for i := range s.Tasks {
				r.taskSpec(&s.Tasks[i], prev)
				prev = s.Tasks[i].Type
			}
		default:
			r.fail()
		}
		if !r.ok {
			return nil, false
		}
	}
	if !r.ok || len(r.b) != 0 {
		return nil, false
	}
	return s, true
}

// taskSpec reads one task as TaskSpec.DecodeMsgpack would. A task of the
// previous task's type shares its string.
func (r *fastReader) taskSpec(t *TaskSpec, prevType string) {
	n := r.containerLen(0x90, 0xdc, 0xdd)
	if n < taskSpecFieldsV1 || n > taskSpecFields {
		r.fail()
		return
	}
	if typ := r.strBytes(); string(typ) == prevType {
		t.Type = prevType
	} else {
		t.Type = string(typ)
	}
	switch {
	case r.isNil():
	default:
		c := r.byte1()
		var l int
		switch c {
		case 0xc4:
			l = r.length(1)
		case 0xc5:
			l = r.length(2)
		case 0xc6:
			l = r.length(4)
		default:
			r.fail()
		}
		if p := r.take(l); r.ok {
			t.Payload = append(make([]byte, 0, len(p)), p...)
		}
	}
	t.Priority = r.int32()
	if !r.isNil() {
		m := r.containerLen(0x80, 0xde, 0xdf)
		if 2*m > len(r.b) {
			r.fail()
			return
		}
		t.Requirements = make(map[string]string, m)
		for range m {
			k := r.strBytes()
			v := r.strBytes()
			t.Requirements[string(k)] = string(v)
		}
	}
	t.MaxAttempts = r.int32()
	if n > taskSpecFieldsV1 {
		if r.byte1() != 0xcb {
			r.fail()
			return
		}
		if p := r.take(8); p != nil {
			t.Size = math.Float64frombits(binary.BigEndian.Uint64(p))
		}
	}
	if n > taskSpecFieldsV1+1 {
		t.Pin = string(r.strBytes())
	}
}

// appendSubmitAck appends a's msgpack encoding to b, as msgpack.Marshal
// writes it; ok=false for an ack carrying an error (msgpack/v5 writes it).
func appendSubmitAck(b []byte, a *SubmitAck) ([]byte, bool) {
	if a.Err != nil {
		return b, false
	}
	if len(a.IDs) == 0 {
		return append(b, 0x80), true
	}
	b = append(b, 0x81, 0xa3, 'i', 'd', 's')
	b = appendArrayLen(b, len(a.IDs))
	for _, id := range a.IDs {
		b = binary.BigEndian.AppendUint64(append(b, 0xcf), id)
	}
	return b, true
}

// decodeSubmitAck decodes an ack without an error in the forms msgpack/v5
// writes; ok=false leaves b to msgpack/v5.
func decodeSubmitAck(b []byte) (*SubmitAck, bool) {
	r := &fastReader{b: b, ok: true}
	a := &SubmitAck{}
	switch r.containerLen(0x80, 0xde, 0xdf) {
	case 0:
	case 1:
		if key := r.strBytes(); string(key) != "ids" {
			return nil, false
		}
		n := r.containerLen(0x90, 0xdc, 0xdd)
		if !r.ok || n > len(r.b) {
			return nil, false
		}
		a.IDs = make([]uint64, n)
		for i := range a.IDs {
			a.IDs[i] = r.uint()
		}
	default:
		return nil, false
	}
	if !r.ok || len(r.b) != 0 {
		return nil, false
	}
	return a, true
}
