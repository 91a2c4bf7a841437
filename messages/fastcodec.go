package messages

import (
	"encoding/binary"
	"math"
)

// The fast codec of the messages that carry work by the thousand: Submit and
// SubmitAck (clients and routers to owners), Grant (tasks to executors),
// Pull and Heartbeat (results from executors). msgpack/v5's reflection and
// per-call interfaces cost about 0.4 µs per task to encode and 1.1 µs to
// decode (two allocations per task): a tenth of a cluster node's CPU per
// task in W1 and most of W7's batched figure (docs/benchmarks.md). These
// functions write and read the same bytes directly:
//   - appendFast writes exactly the bytes msgpack.Marshal writes (struct
//     fields as a map in declaration order without the omitempty ones that
//     are empty, ints at msgpack/v5's fixed widths, the as_array element
//     structs as arrays, TaskSpec as TaskSpec.EncodeMsgpack does), or
//     declines (an Error inside: msgpack/v5 writes that);
//   - decodeFast reads the forms msgpack/v5 writes, in any key order, and
//     declines anything else (unknown or repeated keys, a string where bytes
//     are expected, a value out of its field's range, a float32, ...);
//     Registry.Decode then decodes with msgpack/v5 as before. So it changes
//     no accepted input and no result: the fuzz tests check that whatever it
//     accepts msgpack/v5 decodes to the same message.
//
// Its input has passed CheckShape (every length fits in the bytes left), but
// it checks every bound again itself: it never reads past b, and it
// allocates at most a small multiple of len(b).

// appendFast returns msg's msgpack encoding in a buffer sized for it; false
// when msg is not one of the fast messages or carries what only msgpack/v5
// writes.
func appendFast(msg any) ([]byte, bool) {
	switch m := msg.(type) {
	case *Submit:
		return appendSubmit(make([]byte, 0, submitSize(m)), m), true
	case *SubmitAck:
		if m.Err != nil {
			return nil, false
		}
		return appendSubmitAck(make([]byte, 0, 8+9*len(m.IDs)), m), true
	case *Grant:
		if m.Err != nil {
			return nil, false
		}
		return appendGrant(make([]byte, 0, grantSize(m)), m), true
	case *Pull:
		return appendPull(make([]byte, 0, 96+resultsSize(m.Results)+9*len(m.Held)+len(m.ExecutorID)), m), true
	case *Heartbeat:
		return appendHeartbeat(make([]byte, 0, 96+resultsSize(m.Results)+9*len(m.Held)+len(m.ExecutorID)+len(m.Unhealthy)), m), true
	}
	return nil, false
}

// decodeFast decodes b as the named message; false leaves b to msgpack/v5.
func decodeFast(name string, b []byte) (any, bool) {
	r := &fastReader{b: b, ok: true}
	var msg any
	switch name {
	case "shoal.Submit":
		msg = r.submit()
	case "shoal.SubmitAck":
		msg = r.submitAck()
	case "shoal.Grant":
		msg = r.grant()
	case "shoal.Pull":
		msg = r.pull()
	case "shoal.Heartbeat":
		msg = r.heartbeat()
	default:
		return nil, false
	}
	if !r.ok || len(r.b) != 0 {
		return nil, false
	}
	return msg, true
}

// Encoding.

func appendSubmit(b []byte, s *Submit) []byte {
	b = appendUint16(appendKey(append(b, 0x82), "v"), s.Version)
	b = appendKey(b, "tasks")
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
		n += 40 + 9*btoi(t.TimeoutMillis != 0) + len(t.Type) + len(t.Payload) + len(t.Pin)
		for k, v := range t.Requirements {
			n += 10 + len(k) + len(v)
		}
	}
	return n
}

func appendTaskSpec(b []byte, t *TaskSpec) []byte {
	n := taskSpecLen(t)
	b = append(b, 0x90|byte(n))
	b = appendStr(b, t.Type)
	b = appendBytes(b, t.Payload)
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
	b = appendStr(appendFloat64(b, t.Size), t.Pin)
	if n == taskSpecFieldsV2 {
		return b
	}
	return appendInt64(b, t.TimeoutMillis)
}

func appendSubmitAck(b []byte, a *SubmitAck) []byte {
	if len(a.IDs) == 0 {
		return append(b, 0x80)
	}
	return appendUint64s(appendKey(append(b, 0x81), "ids"), a.IDs)
}

func grantSize(g *Grant) int {
	n := 96 + 9*len(g.Cancel)
	for i := range g.Tasks {
		n += 32 + 9*btoi(g.Tasks[i].TimeoutMillis != 0) + len(g.Tasks[i].Type) + len(g.Tasks[i].Payload)
	}
	return n
}

func appendGrant(b []byte, g *Grant) []byte {
	n := 1 + btoi(len(g.Tasks) > 0) + btoi(len(g.Cancel) > 0) + btoi(g.Sleep) + btoi(g.HeartbeatMillis != 0)
	b = append(b, 0x80|byte(n))
	if len(g.Tasks) > 0 {
		b = appendArrayLen(appendKey(b, "tasks"), len(g.Tasks))
		for i := range g.Tasks {
			t := &g.Tasks[i]
			b = appendUint64(append(b, 0x90|byte(taskLen(t))), t.ID)
			b = appendBytes(appendStr(b, t.Type), t.Payload)
			b = appendInt32(appendInt32(b, t.Priority), t.Attempt)
			if t.TimeoutMillis != 0 {
				b = appendInt64(b, t.TimeoutMillis)
			}
		}
	}
	if len(g.Cancel) > 0 {
		b = appendUint64s(appendKey(b, "cancel"), g.Cancel)
	}
	b = appendInt64(appendKey(b, "lease_ttl_ms"), g.LeaseTTLMillis)
	if g.Sleep {
		b = appendBool(appendKey(b, "sleep"), true)
	}
	if g.HeartbeatMillis != 0 {
		b = appendInt64(appendKey(b, "heartbeat_ms"), g.HeartbeatMillis)
	}
	return b
}

func resultsSize(rs []Result) int {
	n := 0
	for i := range rs {
		n += 48 + len(rs[i].Output) + len(rs[i].Error)
	}
	return n
}

func appendResults(b []byte, rs []Result) []byte {
	b = appendArrayLen(b, len(rs))
	for i := range rs {
		r := &rs[i]
		b = appendInt32(appendUint64(append(b, 0x97), r.TaskID), r.Attempt)
		b = appendBytes(appendBool(b, r.OK), r.Output)
		b = appendBool(appendStr(b, r.Error), r.Permanent)
		b = appendInt64(b, r.RunNanos)
	}
	return b
}

func appendLoad(b []byte, l *LoadReport) []byte {
	b = append(b, 0x80|byte(4+btoi(l.Disk != 0)+btoi(l.Procs != 0)+btoi(l.IP != "")))
	b = appendFloat64(appendKey(b, "cpu"), l.CPU)
	b = appendFloat64(appendKey(b, "mem"), l.Mem)
	b = appendFloat64(appendKey(b, "io"), l.IO)
	b = appendInt32(appendKey(b, "inflight"), l.InFlight)
	// The servers view's fields, omitempty as msgpack/v5 writes them.
	if l.Disk != 0 {
		b = appendFloat64(appendKey(b, "disk"), l.Disk)
	}
	if l.Procs != 0 {
		b = appendInt32(appendKey(b, "procs"), l.Procs)
	}
	if l.IP != "" {
		b = appendStr(appendKey(b, "ip"), l.IP)
	}
	return b
}

func appendPull(b []byte, p *Pull) []byte {
	b = append(b, 0x80|byte(3+btoi(len(p.Results) > 0)+btoi(len(p.Held) > 0)))
	b = appendStr(appendKey(b, "executor"), p.ExecutorID)
	b = appendLoad(appendKey(b, "load"), &p.Load)
	b = appendInt32(appendKey(b, "free"), p.Free)
	if len(p.Results) > 0 {
		b = appendResults(appendKey(b, "results"), p.Results)
	}
	if len(p.Held) > 0 {
		b = appendUint64s(appendKey(b, "held"), p.Held)
	}
	return b
}

func appendHeartbeat(b []byte, h *Heartbeat) []byte {
	b = append(b, 0x80|byte(2+btoi(len(h.Held) > 0)+btoi(len(h.Results) > 0)+btoi(h.Unhealthy != "")))
	b = appendStr(appendKey(b, "executor"), h.ExecutorID)
	b = appendLoad(appendKey(b, "load"), &h.Load)
	if len(h.Held) > 0 {
		b = appendUint64s(appendKey(b, "held"), h.Held)
	}
	if len(h.Results) > 0 {
		b = appendResults(appendKey(b, "results"), h.Results)
	}
	if h.Unhealthy != "" {
		b = appendStr(appendKey(b, "unhealthy"), h.Unhealthy)
	}
	return b
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// appendKey appends a field name (all are fixstr: under 32 bytes).
func appendKey(b []byte, k string) []byte { return append(append(b, 0xa0|byte(len(k))), k...) }

func appendUint16(b []byte, v uint16) []byte {
	return binary.BigEndian.AppendUint16(append(b, 0xcd), v)
}

func appendInt32(b []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
}

func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendUint64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

func appendBool(b []byte, v bool) []byte { return append(b, 0xc2|byte(btoi(v))) }

func appendUint64s(b []byte, vs []uint64) []byte {
	b = appendArrayLen(b, len(vs))
	for _, v := range vs {
		b = appendUint64(b, v)
	}
	return b
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

// appendBytes appends p as bin, or nil for a nil slice.
func appendBytes(b []byte, p []byte) []byte {
	switch l := len(p); {
	case p == nil:
		return append(b, 0xc0)
	case l < 1<<8:
		b = append(b, 0xc4, byte(l))
	case l < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(l))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(l))
	}
	return append(b, p...)
}

func appendArrayLen(b []byte, l int) []byte { return appendContainerLen(b, l, 0x90, 0xdc, 0xdd) }
func appendMapLen(b []byte, l int) []byte   { return appendContainerLen(b, l, 0x80, 0xde, 0xdf) }

func appendContainerLen(b []byte, l int, fix, c16, c32 byte) []byte {
	switch {
	case l < 16:
		return append(b, fix|byte(l))
	case l < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(l))
	default:
		return binary.BigEndian.AppendUint32(append(b, c32), uint32(l))
	}
}

// Decoding.

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
	switch {
	case p == nil:
		return 0
	case width == 1:
		return int(p[0])
	case width == 2:
		return int(binary.BigEndian.Uint16(p))
	}
	return int(binary.BigEndian.Uint32(p))
}

// isNil consumes a nil if one is next.
func (r *fastReader) isNil() bool {
	if r.ok && len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return true
	}
	return false
}

// fields reads a map whose keys are among names, each at most once, and
// calls value(i) to read the value of names[i]. Anything else fails.
func (r *fastReader) fields(names []string, value func(i int)) {
	n := r.containerLen(0x80, 0xde, 0xdf)
	seen := 0
	for range n {
		key := r.strBytes()
		if !r.ok {
			return
		}
		i := 0
		for i < len(names) && names[i] != string(key) {
			i++
		}
		if i == len(names) || seen&(1<<i) != 0 {
			r.fail()
			return
		}
		seen |= 1 << i
		value(i)
		if !r.ok {
			return
		}
	}
}

// count reads an array header (or, with orNil, a nil as -1) whose elements
// take at least min bytes each.
func (r *fastReader) count(minBytes int, orNil bool) int {
	if orNil && r.isNil() {
		return -1
	}
	n := r.containerLen(0x90, 0xdc, 0xdd)
	if n*minBytes > len(r.b) {
		r.fail()
	}
	if !r.ok {
		return 0
	}
	return n
}

// int reads any msgpack integer as msgpack/v5 does for an int64 field (a
// uint64 above MaxInt64 wraps, as there).
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
	if r.ok && len(r.b) > 0 && (r.b[0] >= 0xd0 && r.b[0] <= 0xd3 || r.b[0] >= 0xe0) {
		r.fail()
		return 0
	}
	return uint64(r.int())
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

// float64 reads a msgpack float64 (a float32 or an int goes to msgpack/v5).
func (r *fastReader) float64() float64 {
	if r.byte1() != 0xcb {
		r.fail()
		return 0
	}
	if p := r.take(8); p != nil {
		return math.Float64frombits(binary.BigEndian.Uint64(p))
	}
	return 0
}

func (r *fastReader) bool() bool {
	switch c := r.byte1(); c {
	case 0xc2, 0xc3:
		return c == 0xc3
	}
	r.fail()
	return false
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

// str reads a string; one equal to prev shares prev's memory.
func (r *fastReader) str(prev string) string {
	if s := r.strBytes(); string(s) != prev {
		return string(s)
	}
	return prev
}

// bytes reads bin (copied out of the message), or nil for a nil.
func (r *fastReader) bytes() []byte {
	if r.isNil() {
		return nil
	}
	var l int
	switch r.byte1() {
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
		return append(make([]byte, 0, len(p)), p...)
	}
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

func (r *fastReader) uint64s() []uint64 {
	n := r.count(1, true)
	if n < 0 || !r.ok {
		return nil
	}
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = r.uint()
	}
	return vs
}

var submitFields = []string{"v", "tasks"}

func (r *fastReader) submit() *Submit {
	s := &Submit{}
	r.fields(submitFields, func(i int) {
		switch i {
		case 0:
			v := r.int()
			if v < 0 || v > math.MaxUint16 {
				r.fail()
			}
			s.Version = uint16(v)
		case 1:
			n := r.count(6, true)
			if n < 0 || !r.ok {
				return
			}
			s.Tasks = make([]TaskSpec, n)
			prev := ""
			for i := range s.Tasks {
				r.taskSpec(&s.Tasks[i], prev)
				prev = s.Tasks[i].Type
			}
		}
	})
	return s
}

// taskSpec reads one task as TaskSpec.DecodeMsgpack would. A task of the
// previous task's type shares its string.
func (r *fastReader) taskSpec(t *TaskSpec, prevType string) {
	n := r.containerLen(0x90, 0xdc, 0xdd)
	if n < taskSpecFieldsV1 || n > taskSpecFields {
		r.fail()
		return
	}
	t.Type = r.str(prevType)
	t.Payload = r.bytes()
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
			t.Requirements[string(k)] = string(r.strBytes())
		}
	}
	t.MaxAttempts = r.int32()
	if n > taskSpecFieldsV1 {
		t.Size = r.float64()
	}
	if n > taskSpecFieldsV1+1 {
		t.Pin = r.str("")
	}
	if n > taskSpecFieldsV2 {
		t.TimeoutMillis = r.int()
	}
}

var submitAckFields = []string{"ids"}

func (r *fastReader) submitAck() *SubmitAck {
	a := &SubmitAck{}
	r.fields(submitAckFields, func(int) { a.IDs = r.uint64s() })
	return a
}

var grantFields = []string{"tasks", "cancel", "lease_ttl_ms", "err", "sleep", "heartbeat_ms"}

func (r *fastReader) grant() *Grant {
	g := &Grant{}
	r.fields(grantFields, func(i int) {
		switch i {
		case 0:
			n := r.count(6, true)
			if n < 0 || !r.ok {
				return
			}
			g.Tasks = make([]Task, n)
			prev := ""
			for i := range g.Tasks {
				n := r.containerLen(0x90, 0xdc, 0xdd)
				if n != taskFieldsV1 && n != taskFields {
					r.fail()
					return
				}
				t := &g.Tasks[i]
				t.ID = r.uint()
				t.Type = r.str(prev)
				t.Payload = r.bytes()
				t.Priority = r.int32()
				t.Attempt = r.int32()
				if n == taskFields {
					t.TimeoutMillis = r.int()
				}
				prev = t.Type
			}
		case 1:
			g.Cancel = r.uint64s()
		case 2:
			g.LeaseTTLMillis = r.int()
		case 3:
			if !r.isNil() {
				r.fail() // an error: msgpack/v5 decodes it
			}
		case 4:
			g.Sleep = r.bool()
		case 5:
			g.HeartbeatMillis = r.int()
		}
	})
	return g
}

func (r *fastReader) results() []Result {
	n := r.count(8, true)
	if n < 0 || !r.ok {
		return nil
	}
	rs := make([]Result, n)
	for i := range rs {
		if r.containerLen(0x90, 0xdc, 0xdd) != 7 {
			r.fail()
			return nil
		}
		res := &rs[i]
		res.TaskID = r.uint()
		res.Attempt = r.int32()
		res.OK = r.bool()
		res.Output = r.bytes()
		res.Error = r.str("")
		res.Permanent = r.bool()
		res.RunNanos = r.int()
	}
	return rs
}

var loadFields = []string{"cpu", "mem", "io", "inflight", "disk", "procs", "ip"}

func (r *fastReader) load(l *LoadReport) {
	r.fields(loadFields, func(i int) {
		switch i {
		case 0:
			l.CPU = r.float64()
		case 1:
			l.Mem = r.float64()
		case 2:
			l.IO = r.float64()
		case 3:
			l.InFlight = r.int32()
		case 4:
			l.Disk = r.float64()
		case 5:
			l.Procs = r.int32()
		case 6:
			l.IP = r.str("")
		}
	})
}

var pullFields = []string{"executor", "load", "free", "results", "held"}

func (r *fastReader) pull() *Pull {
	p := &Pull{}
	r.fields(pullFields, func(i int) {
		switch i {
		case 0:
			p.ExecutorID = r.str("")
		case 1:
			r.load(&p.Load)
		case 2:
			p.Free = r.int32()
		case 3:
			p.Results = r.results()
		case 4:
			p.Held = r.uint64s()
		}
	})
	return p
}

var heartbeatFields = []string{"executor", "load", "held", "results", "unhealthy"}

func (r *fastReader) heartbeat() *Heartbeat {
	h := &Heartbeat{}
	r.fields(heartbeatFields, func(i int) {
		switch i {
		case 0:
			h.ExecutorID = r.str("")
		case 1:
			r.load(&h.Load)
		case 2:
			h.Held = r.uint64s()
		case 3:
			h.Results = r.results()
		case 4:
			h.Unhealthy = r.str("")
		}
	})
	return h
}
