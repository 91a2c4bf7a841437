package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Record encoding.
//
// Records are stored as a msgpack array with a fixed positional layout whose
// first element is a layout version, so any msgpack tool can still read
// them and the layout can evolve (a new version, with its own length, gets
// its own decoder branch):
//
//	task.Record, version 3, array of 14 (written when the task has a
//	timeout; without one version 2 is written, which older builds read):
//	  [3, id, type, payload, prio, class, digest, req, max_attempts, attempts, submitted_ns, size, pin, timeout_ms]
//	task.Record, version 2, array of 13 (timeout_ms 0):
//	  [2, id, type, payload, prio, class, digest, req, max_attempts, attempts, submitted_ns, size, pin]
//	task.Record, version 1, array of 11 (read only; written before Size and
//	Pin were fields, which the decoder derives from req):
//	  [1, id, type, payload, prio, class, digest, req, max_attempts, attempts, submitted_ns]
//	task.Result, version 1, array of 10:
//	  [1, id, class, digest, state, out, error, attempts, alias_of, finished_ns]
//
// Integers use msgpack's shortest encoding; payload and out are bin (nil
// for a nil payload and for an empty out, as the omitempty of the former
// map layout did), digest is a 32-byte bin, req is a map of str to str (nil
// when empty), type, pin and error are str, size is a float64 (the
// integer 0 when the task has none, one byte instead of nine).
//
// The encoders append to a caller's buffer and use no reflection; the
// decoders check every length against the bytes left before they allocate,
// so corrupt input yields an error, never a panic or a huge allocation.
//
// Records written by earlier builds are msgpack maps keyed by field name;
// the decoders recognise a map header and read those with msgpack's
// reflection decoder, as before, and derive Size and Pin as for version 1.

// Layout versions and their field counts.
const (
	taskLayoutV1   = 1
	taskFieldsV1   = 11
	taskLayoutV2   = 2
	taskFieldsV2   = 13
	taskLayoutV3   = 3
	taskFieldsV3   = 14
	resultLayoutV1 = 1
	resultFieldsV1 = 10
)

// msgpack codes.
const (
	fixMapHeader   = 0x80
	fixArrayHeader = 0x90
	fixStrHeader   = 0xa0
	mpNil          = 0xc0

	mpFloat32, mpFloat64 = 0xca, 0xcb

	mpBin8, mpBin16, mpBin32 = 0xc4, 0xc5, 0xc6

	mpUint8, mpUint16, mpUint32, mpUint64 = 0xcc, 0xcd, 0xce, 0xcf
	mpInt8, mpInt16, mpInt32, mpInt64     = 0xd0, 0xd1, 0xd2, 0xd3

	mpStr8, mpStr16, mpStr32 = 0xd9, 0xda, 0xdb
	mpArray16, mpArray32     = 0xdc, 0xdd
	mpMap16, mpMap32         = 0xde, 0xdf
)

// taskSize returns the exact encoded size of t (appendTask's output).
func taskSize(t *task.Record) int {
	n := 1 + 1 + uintSize(t.ID) + strSize(len(t.Type)) + payloadSize(t.Payload) +
		intSize(int64(t.Priority)) + uintSize(uint64(t.Class)) + binSize(len(t.Digest)) +
		intSize(int64(t.MaxAttempts)) + intSize(int64(t.Attempts)) + intSize(t.SubmittedAt) +
		floatSize(t.Size) + strSize(len(t.Pin))
	if t.TimeoutMillis > 0 {
		n += intSize(t.TimeoutMillis)
	}
	if len(t.Requirements) == 0 {
		n++
	} else {
		n += mapHeaderSize(len(t.Requirements))
		for k, v := range t.Requirements {
			n += strSize(len(k)) + strSize(len(v))
		}
	}
	return n
}

// appendTask appends the encoding of t to b.
func appendTask(b []byte, t *task.Record) []byte {
	if t.TimeoutMillis > 0 {
		b = append(b, fixArrayHeader|taskFieldsV3, taskLayoutV3)
	} else {
		b = append(b, fixArrayHeader|taskFieldsV2, taskLayoutV2)
	}
	b = appendUint(b, t.ID)
	b = appendStr(b, t.Type)
	if t.Payload == nil {
		b = append(b, mpNil)
	} else {
		b = appendBin(b, t.Payload)
	}
	b = appendInt(b, int64(t.Priority))
	b = appendUint(b, uint64(t.Class))
	b = appendBin(b, t.Digest[:])
	if len(t.Requirements) == 0 {
		b = append(b, mpNil)
	} else {
		b = appendMapHeader(b, len(t.Requirements))
		for k, v := range t.Requirements {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	b = appendInt(b, int64(t.MaxAttempts))
	b = appendInt(b, int64(t.Attempts))
	b = appendInt(b, t.SubmittedAt)
	b = appendFloat(b, t.Size)
	b = appendStr(b, t.Pin)
	if t.TimeoutMillis > 0 {
		b = appendInt(b, t.TimeoutMillis)
	}
	return b
}

// resultSize returns the exact encoded size of r (appendResult's output).
func resultSize(r *task.Result) int {
	n := 1 + 1 + uintSize(r.ID) + uintSize(uint64(r.Class)) + binSize(len(r.Digest)) +
		uintSize(uint64(r.State)) + strSize(len(r.Error)) + intSize(int64(r.Attempts)) +
		uintSize(r.AliasOf) + intSize(r.FinishedAt)
	if len(r.Output) == 0 {
		n++
	} else {
		n += binSize(len(r.Output))
	}
	return n
}

// appendResult appends the encoding of r to b.
func appendResult(b []byte, r *task.Result) []byte {
	b = append(b, fixArrayHeader|resultFieldsV1, resultLayoutV1)
	b = appendUint(b, r.ID)
	b = appendUint(b, uint64(r.Class))
	b = appendBin(b, r.Digest[:])
	b = appendUint(b, uint64(r.State))
	if len(r.Output) == 0 {
		b = append(b, mpNil)
	} else {
		b = appendBin(b, r.Output)
	}
	b = appendStr(b, r.Error)
	b = appendInt(b, int64(r.Attempts))
	b = appendUint(b, r.AliasOf)
	return appendInt(b, r.FinishedAt)
}

// recordDecoder decodes records. It remembers the last task type it
// decoded, so a scan over tasks of one type allocates that string once.
// The zero value is ready to use.
type recordDecoder struct {
	lastType string
}

func decodeTask(key, val []byte) (task.Record, error) {
	var d recordDecoder
	var rec task.Record
	if err := d.task(key, val, &rec); err != nil {
		return task.Record{}, err
	}
	return rec, nil
}

func decodeResult(key, val []byte) (task.Result, error) {
	var d recordDecoder
	var rec task.Result
	if err := d.result(key, val, &rec); err != nil {
		return task.Result{}, err
	}
	return rec, nil
}

// task decodes val, the value under key, into rec. Nothing of the returned
// record aliases val.
func (d *recordDecoder) task(key, val []byte, rec *task.Record) error {
	if isMapHeader(val) {
		legacy := new(task.Record)
		if err := unmarshalLegacy(val, legacy); err != nil {
			*rec = task.Record{}
			return fmt.Errorf("store: corrupt task record %s: %w", keyString(key), err)
		}
		if legacy.Size == 0 && legacy.Pin == "" {
			legacy.DerivePlacement()
		} else if !validSize(legacy.Size) {
			*rec = task.Record{}
			return fmt.Errorf("store: corrupt task record %s: size %v out of range", keyString(key), legacy.Size)
		}
		*rec = *legacy
		return nil
	}
	if err := d.taskArray(val, rec); err != nil {
		*rec = task.Record{}
		return fmt.Errorf("store: corrupt task record %s: %w", keyString(key), err)
	}
	return nil
}

// taskArray decodes the array layouts: versions 3 and 2, and version 1 whose Size
// and Pin it derives from the requirements.
func (d *recordDecoder) taskArray(val []byte, rec *task.Record) error {
	r := reader{b: val}
	v, err := r.header(taskFields)
	if err != nil {
		return err
	}
	if rec.ID, err = r.uint(math.MaxUint64); err != nil {
		return fieldErr("id", err)
	}
	typ, err := r.str()
	if err != nil {
		return fieldErr("type", err)
	}
	if typ == nil {
		rec.Type = ""
	} else if string(typ) == d.lastType {
		rec.Type = d.lastType
	} else {
		rec.Type = string(typ)
		d.lastType = rec.Type
	}
	payload, err := r.bin()
	if err != nil {
		return fieldErr("payload", err)
	}
	if payload == nil {
		rec.Payload = nil
	} else {
		rec.Payload = append(make([]byte, 0, len(payload)), payload...)
	}
	prio, err := r.int(math.MinInt32, math.MaxInt32)
	if err != nil {
		return fieldErr("prio", err)
	}
	rec.Priority = int32(prio)
	class, err := r.uint(math.MaxUint8)
	if err != nil {
		return fieldErr("class", err)
	}
	rec.Class = messages.Class(class)
	if err := r.digest(&rec.Digest); err != nil {
		return fieldErr("digest", err)
	}
	if rec.Requirements, err = r.strMap(); err != nil {
		return fieldErr("req", err)
	}
	maxAttempts, err := r.int(math.MinInt32, math.MaxInt32)
	if err != nil {
		return fieldErr("max_attempts", err)
	}
	rec.MaxAttempts = int32(maxAttempts)
	attempts, err := r.int(math.MinInt32, math.MaxInt32)
	if err != nil {
		return fieldErr("attempts", err)
	}
	rec.Attempts = int32(attempts)
	if rec.SubmittedAt, err = r.int(math.MinInt64, math.MaxInt64); err != nil {
		return fieldErr("submitted_ns", err)
	}
	if v == taskLayoutV1 {
		rec.DerivePlacement()
		return r.end()
	}
	if rec.Size, err = r.float(); err != nil {
		return fieldErr("size", err)
	}
	if !validSize(rec.Size) {
		return fieldErr("size", fmt.Errorf("%v out of range", rec.Size))
	}
	pin, err := r.str()
	if err != nil {
		return fieldErr("pin", err)
	}
	rec.Pin = string(pin)
	if v == taskLayoutV3 {
		if rec.TimeoutMillis, err = r.int(0, math.MaxInt64); err != nil {
			return fieldErr("timeout_ms", err)
		}
	}
	return r.end()
}

// result decodes val, the value under key, into rec. Nothing of the
// returned record aliases val.
func (d *recordDecoder) result(key, val []byte, rec *task.Result) error {
	if isMapHeader(val) {
		legacy := new(task.Result)
		if err := unmarshalLegacy(val, legacy); err != nil {
			*rec = task.Result{}
			return fmt.Errorf("store: corrupt result record %s: %w", keyString(key), err)
		}
		*rec = *legacy
		return nil
	}
	if err := d.resultV1(val, rec); err != nil {
		*rec = task.Result{}
		return fmt.Errorf("store: corrupt result record %s: %w", keyString(key), err)
	}
	return nil
}

func (d *recordDecoder) resultV1(val []byte, rec *task.Result) error {
	r := reader{b: val}
	if _, err := r.header(resultFields); err != nil {
		return err
	}
	var err error
	if rec.ID, err = r.uint(math.MaxUint64); err != nil {
		return fieldErr("id", err)
	}
	class, err := r.uint(math.MaxUint8)
	if err != nil {
		return fieldErr("class", err)
	}
	rec.Class = messages.Class(class)
	if err := r.digest(&rec.Digest); err != nil {
		return fieldErr("digest", err)
	}
	state, err := r.uint(math.MaxUint8)
	if err != nil {
		return fieldErr("state", err)
	}
	rec.State = messages.TaskState(state)
	out, err := r.bin()
	if err != nil {
		return fieldErr("out", err)
	}
	if len(out) == 0 {
		rec.Output = nil
	} else {
		rec.Output = append(make([]byte, 0, len(out)), out...)
	}
	msg, err := r.str()
	if err != nil {
		return fieldErr("error", err)
	}
	rec.Error = string(msg)
	attempts, err := r.int(math.MinInt32, math.MaxInt32)
	if err != nil {
		return fieldErr("attempts", err)
	}
	rec.Attempts = int32(attempts)
	if rec.AliasOf, err = r.uint(math.MaxUint64); err != nil {
		return fieldErr("alias_of", err)
	}
	if rec.FinishedAt, err = r.int(math.MinInt64, math.MaxInt64); err != nil {
		return fieldErr("finished_ns", err)
	}
	return r.end()
}

func fieldErr(field string, err error) error {
	return fmt.Errorf("field %s: %w", field, err)
}

// isMapHeader reports whether b starts with a msgpack map: a record in the
// layout of earlier builds.
func isMapHeader(b []byte) bool {
	return len(b) > 0 && (b[0]&0xf0 == fixMapHeader || b[0] == mpMap16 || b[0] == mpMap32)
}

// unmarshalLegacy decodes a record of the map layout with msgpack's
// reflection decoder, after messages.CheckShape made sure the input cannot make it
// allocate without bound or recurse without limit.
func unmarshalLegacy(val []byte, rec any) error {
	if err := messages.CheckShape(val); err != nil {
		return err
	}
	return msgpack.Unmarshal(val, rec)
}

var errShort = errors.New("truncated")

// reader reads msgpack values from a byte slice.
type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) n(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errShort
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) be(n int) (uint64, error) {
	s, err := r.n(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

// taskFields and resultFields map the layout versions the decoders read to
// their field counts.
var (
	taskFields   = map[uint64]int{taskLayoutV1: taskFieldsV1, taskLayoutV2: taskFieldsV2, taskLayoutV3: taskFieldsV3}
	resultFields = map[uint64]int{resultLayoutV1: resultFieldsV1}
)

// header reads the array header and the layout version, one of layouts
// (version → field count), and returns the version.
func (r *reader) header(layouts map[uint64]int) (uint64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == fixArrayHeader:
		n = uint64(c & 0x0f)
	case c == mpArray16:
		n, err = r.be(2)
	case c == mpArray32:
		n, err = r.be(4)
	default:
		return 0, fmt.Errorf("not a record (msgpack code 0x%02x)", c)
	}
	if err != nil {
		return 0, err
	}
	v, err := r.uint(math.MaxUint64)
	if err != nil {
		return 0, fmt.Errorf("layout version: %w", err)
	}
	fields, ok := layouts[v]
	if !ok {
		return 0, fmt.Errorf("unknown layout version %d (array of %d)", v, n)
	}
	if n != uint64(fields) {
		return 0, fmt.Errorf("layout version %d has %d fields, want %d", v, n, fields)
	}
	return v, nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	return nil
}

// uint reads an integer in [0, limit].
func (r *reader) uint(limit uint64) (uint64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case c <= 0x7f:
		v = uint64(c)
	case c >= mpUint8 && c <= mpUint64:
		if v, err = r.be(1 << (c - mpUint8)); err != nil {
			return 0, err
		}
	case c >= 0xe0 || (c >= mpInt8 && c <= mpInt64):
		r.off--
		s, err := r.int(0, math.MaxInt64)
		if err != nil {
			return 0, err
		}
		v = uint64(s)
	default:
		return 0, fmt.Errorf("msgpack code 0x%02x is not an integer", c)
	}
	if v > limit {
		return 0, fmt.Errorf("integer %d out of range", v)
	}
	return v, nil
}

// int reads an integer in [lo, hi].
func (r *reader) int(lo, hi int64) (int64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	var v int64
	switch {
	case c <= 0x7f:
		v = int64(c)
	case c >= 0xe0:
		v = int64(int8(c))
	case c >= mpUint8 && c <= mpUint64:
		u, err := r.be(1 << (c - mpUint8))
		if err != nil {
			return 0, err
		}
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("integer %d out of range", u)
		}
		v = int64(u)
	case c >= mpInt8 && c <= mpInt64:
		n := 1 << (c - mpInt8)
		u, err := r.be(n)
		if err != nil {
			return 0, err
		}
		switch n {
		case 1:
			v = int64(int8(u))
		case 2:
			v = int64(int16(u))
		case 4:
			v = int64(int32(u))
		default:
			v = int64(u)
		}
	default:
		return 0, fmt.Errorf("msgpack code 0x%02x is not an integer", c)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("integer %d out of range", v)
	}
	return v, nil
}

// float reads a float64, a float32 or an integer (the encoder writes a
// size of 0 as the integer 0).
func (r *reader) float() (float64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch c {
	case mpFloat64:
		u, err := r.be(8)
		return math.Float64frombits(u), err
	case mpFloat32:
		u, err := r.be(4)
		return float64(math.Float32frombits(uint32(u))), err
	}
	r.off--
	i, err := r.int(math.MinInt64, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	return float64(i), nil
}

// validSize reports whether a decoded size is one the intake accepts.
func validSize(f float64) bool { return f >= 0 && !math.IsInf(f, 0) }

// str reads a str (nil for msgpack nil). The bytes alias the input.
func (r *reader) str() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c == mpNil:
		return nil, nil
	case c&0xe0 == fixStrHeader:
		n = uint64(c & 0x1f)
	case c == mpStr8:
		n, err = r.be(1)
	case c == mpStr16:
		n, err = r.be(2)
	case c == mpStr32:
		n, err = r.be(4)
	default:
		return nil, fmt.Errorf("msgpack code 0x%02x is not a string", c)
	}
	if err != nil {
		return nil, err
	}
	s, err := r.n(int(n))
	if s == nil && err == nil {
		s = []byte{}
	}
	return s, err
}

// bin reads a bin (nil for msgpack nil, non-nil when empty). The bytes
// alias the input.
func (r *reader) bin() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch c {
	case mpNil:
		return nil, nil
	case mpBin8:
		n, err = r.be(1)
	case mpBin16:
		n, err = r.be(2)
	case mpBin32:
		n, err = r.be(4)
	default:
		return nil, fmt.Errorf("msgpack code 0x%02x is not binary", c)
	}
	if err != nil {
		return nil, err
	}
	s, err := r.n(int(n))
	if s == nil && err == nil {
		s = []byte{}
	}
	return s, err
}

func (r *reader) digest(d *task.Digest) error {
	b, err := r.bin()
	if err != nil {
		return err
	}
	if len(b) != len(d) {
		return fmt.Errorf("%d bytes, want %d", len(b), len(d))
	}
	copy(d[:], b)
	return nil
}

// strMap reads a map of str to str, nil for msgpack nil or an empty map.
func (r *reader) strMap() (map[string]string, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c == mpNil:
		return nil, nil
	case c&0xf0 == fixMapHeader:
		n = uint64(c & 0x0f)
	case c == mpMap16:
		n, err = r.be(2)
	case c == mpMap32:
		n, err = r.be(4)
	default:
		return nil, fmt.Errorf("msgpack code 0x%02x is not a map", c)
	}
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	if n > uint64(len(r.b)-r.off)/2 { // every entry takes 2 bytes at least
		return nil, errShort
	}
	m := make(map[string]string, n)
	for range n {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		v, err := r.str()
		if err != nil {
			return nil, err
		}
		m[string(k)] = string(v)
	}
	return m, nil
}

// Encoding helpers: msgpack's shortest forms.

func uintSize(v uint64) int {
	switch {
	case v <= 0x7f:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func intSize(v int64) int {
	if v >= 0 {
		return uintSize(uint64(v))
	}
	switch {
	case v >= -32:
		return 1
	case v >= math.MinInt8:
		return 2
	case v >= math.MinInt16:
		return 3
	case v >= math.MinInt32:
		return 5
	}
	return 9
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	switch {
	case v >= -32:
		return append(b, byte(int8(v)))
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return append(b, mpInt16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
}

func floatSize(f float64) int {
	if f == 0 {
		return 1
	}
	return 9
}

// appendFloat appends f as a float64, or 0 as the integer 0.
func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, 0)
	}
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(f))
}

func strSize(n int) int {
	switch {
	case n <= 31:
		return 1 + n
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, fixStrHeader|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpStr16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func binSize(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

func payloadSize(p []byte) int {
	if p == nil {
		return 1
	}
	return binSize(len(p))
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = append(b, mpBin16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, p...)
}

func mapHeaderSize(n int) int {
	switch {
	case n <= 15:
		return 1
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, fixMapHeader|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpMap16, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
}
