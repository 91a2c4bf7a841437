package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

func codecTasks() []task.Record {
	many := map[string]string{}
	for i := range 20 { // more than a fixmap holds
		many[strings.Repeat("k", i+1)] = strings.Repeat("v", i)
	}
	return []task.Record{
		{},
		mkTask(1, messages.ClassHigh),
		{ID: math.MaxUint64, Type: strings.Repeat("t", 300), Payload: bytes.Repeat([]byte{0xc1}, 70000),
			Priority: math.MinInt32, Class: messages.Class(255), Digest: task.Digest{1, 2, 3, 31: 0xff},
			Requirements: many, MaxAttempts: math.MaxInt32, Attempts: -1, SubmittedAt: math.MinInt64},
		{ID: 200, Type: strings.Repeat("x", 31), Payload: []byte{}, Priority: -33, MaxAttempts: 128,
			Attempts: 70000, SubmittedAt: math.MaxInt64},
		{ID: 1 << 40, Type: strings.Repeat("y", 32), Payload: make([]byte, 256), Priority: 255,
			Requirements: map[string]string{"": ""}, Attempts: -129, SubmittedAt: -1 << 40},
		{ID: 6, Type: "sized", Requirements: map[string]string{messages.ReqSize: "=2.5", messages.ReqPin: "=exec-1"},
			Size: 2.5, Pin: "exec-1"},
		{ID: 7, Type: "huge", Size: math.MaxFloat64, Pin: strings.Repeat("p", 256)},
		{ID: 8, Type: "tiny", Size: math.SmallestNonzeroFloat64},
		{ID: 9, Type: "timed", TimeoutMillis: 1500, Attempts: 2},
		{ID: 10, Type: "forever", TimeoutMillis: math.MaxInt64, Size: 3, Pin: "x"},
	}
}

func codecResults() []task.Result {
	return []task.Result{
		{},
		mkResult(1, messages.ClassNormal, base),
		{ID: math.MaxUint64, Class: messages.ClassLow, Digest: task.Digest{31: 1}, State: messages.StateDead,
			Output: bytes.Repeat([]byte{0}, 300), Error: strings.Repeat("e", 70000), Attempts: math.MaxInt32,
			AliasOf: math.MaxUint64, FinishedAt: math.MinInt64},
		{ID: 5, State: messages.StateCancelled, Error: "cancelled", Attempts: -5, AliasOf: 4, FinishedAt: 1},
	}
}

// normTask and normResult apply the documented normalisations: an empty
// requirements map and an empty output read back as nil.
func normTask(t task.Record) task.Record {
	if len(t.Requirements) == 0 {
		t.Requirements = nil
	}
	return t
}

func normResult(r task.Result) task.Result {
	if len(r.Output) == 0 {
		r.Output = nil
	}
	return r
}

func TestCodecRoundTrip(t *testing.T) {
	for i, rec := range codecTasks() {
		b := appendTask(nil, &rec)
		if len(b) != taskSize(&rec) {
			t.Errorf("task %d: encoded %d bytes, taskSize %d", i, len(b), taskSize(&rec))
		}
		got, err := decodeTask(taskKey(rec.ID), b)
		if err != nil {
			t.Fatalf("task %d: decode: %v", i, err)
		}
		if want := normTask(rec); !reflect.DeepEqual(got, want) {
			t.Errorf("task %d: round trip = %+v, want %+v", i, got, want)
		}
		if (got.Payload == nil) != (rec.Payload == nil) {
			t.Errorf("task %d: payload nil = %v, want %v", i, got.Payload == nil, rec.Payload == nil)
		}
		// The decoded record does not alias the encoding.
		if len(got.Payload) > 0 {
			clear(b)
			if !bytes.Equal(got.Payload, rec.Payload) {
				t.Errorf("task %d: payload aliases the encoded bytes", i)
			}
		}
	}
	for i, rec := range codecResults() {
		b := appendResult(nil, &rec)
		if len(b) != resultSize(&rec) {
			t.Errorf("result %d: encoded %d bytes, resultSize %d", i, len(b), resultSize(&rec))
		}
		got, err := decodeResult(resultKey(rec.ID), b)
		if err != nil {
			t.Fatalf("result %d: decode: %v", i, err)
		}
		if want := normResult(rec); !reflect.DeepEqual(got, want) {
			t.Errorf("result %d: round trip = %+v, want %+v", i, got, want)
		}
	}
}

// TestCodecIsMsgpack checks that the encodings are well-formed msgpack
// arrays led by the layout version, readable by any msgpack decoder.
func TestCodecIsMsgpack(t *testing.T) {
	for _, rec := range codecTasks() {
		var v []any
		// Version 3 only for a task with a timeout: others stay readable
		// by builds before timeouts.
		fields, layout := taskFieldsV2, int8(taskLayoutV2)
		if rec.TimeoutMillis > 0 {
			fields, layout = taskFieldsV3, taskLayoutV3
		}
		if err := msgpack.Unmarshal(appendTask(nil, &rec), &v); err != nil || len(v) != fields {
			t.Fatalf("task %d as msgpack: %v, %d fields", rec.ID, err, len(v))
		}
		if ver, _ := v[0].(int8); ver != layout {
			t.Errorf("task %d: version %v", rec.ID, v[0])
		}
	}
	for _, rec := range codecResults() {
		var v []any
		if err := msgpack.Unmarshal(appendResult(nil, &rec), &v); err != nil || len(v) != resultFieldsV1 {
			t.Fatalf("result %d as msgpack: %v, %d fields", rec.ID, err, len(v))
		}
	}
}

// TestCodecReadsLegacyMaps checks that records written by earlier builds (a
// msgpack map per record) still decode.
func TestCodecReadsLegacyMaps(t *testing.T) {
	for _, rec := range codecTasks() {
		b, err := msgpack.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeTask(taskKey(rec.ID), b)
		if err != nil {
			t.Fatalf("legacy task %d: %v", rec.ID, err)
		}
		if want := normTask(rec); !reflect.DeepEqual(got, want) {
			t.Errorf("legacy task %d = %+v, want %+v", rec.ID, got, want)
		}
	}
	for _, rec := range codecResults() {
		b, err := msgpack.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeResult(resultKey(rec.ID), b)
		if err != nil {
			t.Fatalf("legacy result %d: %v", rec.ID, err)
		}
		if want := normResult(rec); !reflect.DeepEqual(got, want) {
			t.Errorf("legacy result %d = %+v, want %+v", rec.ID, got, want)
		}
	}
	// A legacy-looking record whose length prefix lies must not reach
	// msgpack (which would allocate from it).
	if _, err := decodeTask(taskKey(3), []byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff}); err == nil || !strings.Contains(err.Error(), "t/3") {
		t.Errorf("lying legacy record: err = %v", err)
	}
}

// manualTask builds a version 1 task record of zeros whose prio is the
// given msgpack bytes.
func manualTask(prio ...byte) []byte {
	b := []byte{fixArrayHeader | taskFieldsV1, taskLayoutV1, 0, fixStrHeader, mpNil}
	b = append(b, prio...)
	b = append(b, 0, mpBin8, 32)
	b = append(b, make([]byte, 32)...)
	return append(b, mpNil, 0, 0, 0)
}

func TestCodecRejectsCorrupt(t *testing.T) {
	tr := mkTask(9, messages.ClassLow)
	good := appendTask(nil, &tr)
	res := mkResult(9, messages.ClassLow, base)
	goodRes := appendResult(nil, &res)
	edit := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := map[string][]byte{
		"empty":           {},
		"nil":             {mpNil},
		"0xc1":            {0xc1},
		"version 3":       edit(good, func(b []byte) []byte { b[1] = 3; return b }),
		"version 1 of 13": edit(good, func(b []byte) []byte { b[1] = taskLayoutV1; return b }),
		"size negative":   edit(good, func(b []byte) []byte { return append(b[:len(b)-2], 0xff, fixStrHeader) }),
		"size NaN": edit(good, func(b []byte) []byte {
			return append(append(b[:len(b)-2], mpFloat64, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), fixStrHeader)
		}),
		"size as a str":  edit(good, func(b []byte) []byte { return append(b[:len(b)-2], 0xa1, '1', fixStrHeader) }),
		"10 fields":      edit(good, func(b []byte) []byte { b[0] = fixArrayHeader | 10; return b }),
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"result as task": goodRes,
		"prio too large": manualTask(0xce, 0x80, 0, 0, 0),
		"prio as a str":  manualTask(0xa1, '1'),
		"prio as nil":    manualTask(mpNil),
	}
	if _, err := decodeTask(taskKey(9), manualTask(0xd2, 0x80, 0, 0, 0)); err != nil {
		t.Fatalf("manualTask with prio MinInt32 does not decode: %v", err)
	}
	for i := range good {
		cases[fmt.Sprintf("truncated at %d", i)] = good[:i]
	}
	for name, b := range cases {
		if _, err := decodeTask(taskKey(9), b); err == nil || !strings.Contains(err.Error(), "t/9") {
			t.Errorf("%s: decodeTask err = %v; want an error naming t/9", name, err)
		}
	}
	for i := range goodRes {
		if _, err := decodeResult(resultKey(9), goodRes[:i]); err == nil || !strings.Contains(err.Error(), "r/9") {
			t.Errorf("result truncated at %d: err = %v", i, err)
		}
	}
	if _, err := decodeResult(resultKey(9), good); err == nil {
		t.Errorf("task decoded as a result")
	}
}

// v1SizedTask and v1PinnedTask are task records as the version 1 encoder
// wrote them (before Size and Pin were fields): size and pin only in the
// requirements, under the reserved keys.
const (
	v1SizedTask  = "9b012aa672656e646572c4076672616d652d375000c420dead00000000000000000000000000000000000000000000000000000000000181aa73686f616c2e73697a65a43d322e350301cf17979cfe362a0000"
	v1PinnedTask = "9b012ba672656e646572c4076672616d652d375000c420dead00000000000000000000000000000000000000000000000000000000000181ae73686f616c2e6578656375746f72a73d657865632d310301cf17979cfe362a0000"
)

// TestCodecReadsV1 checks that version 1 records decode under version 2,
// with Size and Pin derived from their requirements, and are rewritten in
// version 2.
func TestCodecReadsV1(t *testing.T) {
	want := task.Record{ID: 42, Type: "render", Payload: []byte("frame-7"), Priority: 80, Class: messages.ClassHigh,
		Digest: task.Digest{0xde, 0xad, 31: 0x01}, Requirements: map[string]string{messages.ReqSize: "=2.5"},
		MaxAttempts: 3, Attempts: 1, SubmittedAt: 1_700_000_000_000_000_000, Size: 2.5}
	pinned := want
	pinned.ID, pinned.Size, pinned.Pin = 43, 0, "exec-1"
	pinned.Requirements = map[string]string{messages.ReqPin: "=exec-1"}
	for _, c := range []struct {
		hex  string
		want task.Record
	}{{v1SizedTask, want}, {v1PinnedTask, pinned}} {
		b, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeTask(taskKey(c.want.ID), b)
		if err != nil {
			t.Fatalf("v1 task %d: %v", c.want.ID, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("v1 task %d = %+v, want %+v", c.want.ID, got, c.want)
		}
		again := appendTask(nil, &got)
		if again[1] != taskLayoutV2 {
			t.Errorf("v1 task %d re-encoded in layout %d", c.want.ID, again[1])
		}
		if back, err := decodeTask(taskKey(c.want.ID), again); err != nil || !reflect.DeepEqual(back, c.want) {
			t.Errorf("v1 task %d rewritten reads back as %+v, %v", c.want.ID, back, err)
		}
	}
	// A malformed reserved size in an old record reads as no size (what
	// placement made of it then), not as a corrupt record.
	bad := manualTask(0)
	bad = append(bad[:len(bad)-4], fixMapHeader|1)
	bad = appendStr(appendStr(bad, messages.ReqSize), "=big")
	bad = append(bad, 0, 0, 0)
	if got, err := decodeTask(taskKey(9), bad); err != nil || got.Size != 0 || got.Requirements[messages.ReqSize] != "=big" {
		t.Errorf("v1 task with a malformed size = %+v, %v", got, err)
	}
}

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders: they must
// return an error naming the key, never panic; what decodes must encode and
// decode again to the same record.
func FuzzDecodeRecords(f *testing.F) {
	for _, rec := range codecTasks()[:2] {
		f.Add(appendTask(nil, &rec))
		legacy, _ := msgpack.Marshal(&rec)
		f.Add(legacy)
	}
	for _, rec := range codecResults()[:2] {
		f.Add(appendResult(nil, &rec))
		legacy, _ := msgpack.Marshal(&rec)
		f.Add(legacy)
	}
	for _, h := range []string{v1SizedTask, v1PinnedTask} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if rec, err := decodeTask(taskKey(7), b); err != nil {
			if !strings.Contains(err.Error(), "t/7") {
				t.Errorf("task decode error %q does not name the key", err)
			}
		} else {
			again, err := decodeTask(taskKey(7), appendTask(nil, &rec))
			if err != nil || !reflect.DeepEqual(again, normTask(rec)) {
				t.Errorf("task %+v re-encoded reads back as %+v, %v", rec, again, err)
			}
		}
		if rec, err := decodeResult(resultKey(7), b); err != nil {
			if !strings.Contains(err.Error(), "r/7") {
				t.Errorf("result decode error %q does not name the key", err)
			}
		} else {
			again, err := decodeResult(resultKey(7), appendResult(nil, &rec))
			if err != nil || !reflect.DeepEqual(again, normResult(rec)) {
				t.Errorf("result %+v re-encoded reads back as %+v, %v", rec, again, err)
			}
		}
	})
}

// FuzzRecordRoundTrip checks that every record encodes to its exact size
// and decodes to itself.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add(uint64(1), "resize", []byte("p"), int32(50), uint8(1), []byte{1}, "gpu", "=1", int32(3), int32(0), int64(1), "", uint64(0))
	f.Add(uint64(math.MaxUint64), "", []byte(nil), int32(-1), uint8(255), []byte(nil), "", "", int32(-40), int32(1<<20), int64(math.MinInt64), "boom", uint64(3))
	f.Fuzz(func(t *testing.T, id uint64, typ string, payload []byte, prio int32, class uint8, digest []byte,
		k, v string, maxAttempts, attempts int32, ns int64, msg string, alias uint64) {
		tr := task.Record{ID: id, Type: typ, Payload: payload, Priority: prio, Class: messages.Class(class),
			MaxAttempts: maxAttempts, Attempts: attempts, SubmittedAt: ns}
		copy(tr.Digest[:], digest)
		if k != "" {
			tr.Requirements = map[string]string{k: v, v + "2": k}
		}
		b := appendTask(nil, &tr)
		if len(b) != taskSize(&tr) {
			t.Fatalf("task: %d bytes, taskSize %d", len(b), taskSize(&tr))
		}
		got, err := decodeTask(taskKey(id), b)
		if err != nil || !reflect.DeepEqual(got, normTask(tr)) || (got.Payload == nil) != (payload == nil) {
			t.Fatalf("task %+v reads back as %+v, %v", tr, got, err)
		}
		res := task.Result{ID: id, Class: messages.Class(class), State: messages.TaskState(class), Output: payload,
			Error: msg, Attempts: attempts, AliasOf: alias, FinishedAt: ns}
		copy(res.Digest[:], digest)
		b = appendResult(nil, &res)
		if len(b) != resultSize(&res) {
			t.Fatalf("result: %d bytes, resultSize %d", len(b), resultSize(&res))
		}
		gotRes, err := decodeResult(resultKey(id), b)
		if err != nil || !reflect.DeepEqual(gotRes, normResult(res)) {
			t.Fatalf("result %+v reads back as %+v, %v", res, gotRes, err)
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	payload := make([]byte, 256)
	tr := task.Record{ID: 123456, Type: "bench", Payload: payload, Priority: messages.DefaultPriority,
		Class: messages.ClassNormal, Digest: task.Digest{1, 2, 3}, MaxAttempts: 3, SubmittedAt: 1 << 60}
	res := task.Result{ID: 123456, Class: messages.ClassNormal, Digest: task.Digest{1, 2, 3}, State: messages.StateDone,
		Attempts: 1, FinishedAt: 1 << 60}
	b.Run("encode/task", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendTask(buf[:0], &tr)
		}
	})
	b.Run("encode/task/msgpack-reflect", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(&tr)
		}
	})
	b.Run("encode/result", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendResult(buf[:0], &res)
		}
	})
	b.Run("encode/result/msgpack-reflect", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(&res)
		}
	})
	tv, rv := appendTask(nil, &tr), appendResult(nil, &res)
	tk, rk := taskKey(tr.ID), resultKey(res.ID)
	legacyT, _ := msgpack.Marshal(&tr)
	legacyR, _ := msgpack.Marshal(&res)
	b.Run("decode/task", func(b *testing.B) {
		b.ReportAllocs()
		var d recordDecoder
		var rec task.Record
		for b.Loop() {
			if err := d.task(tk, tv, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/task/msgpack-reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeTask(tk, legacyT); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/result", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeResult(rk, rv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/result/msgpack-reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeResult(rk, legacyR); err != nil {
				b.Fatal(err)
			}
		}
	})
}
