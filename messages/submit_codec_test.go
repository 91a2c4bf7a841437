package messages

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reflectDecodeSubmit is Registry.Decode's msgpack/v5 path for a Submit.
func reflectDecodeSubmit(b []byte) (*Submit, error) {
	s := &Submit{}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(false)
	return s, dec.Decode(s)
}

// submitSamples cover every branch of the fast codec's encoder: each length
// class of strings, bytes, arrays and maps, nil against empty, 5 and 7
// element tasks, extreme ints and floats.
func submitSamples() []*Submit {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70000)
	many := make([]TaskSpec, 20)
	for i := range many {
		many[i] = TaskSpec{Type: "noop", Payload: []byte{byte(i)}, Priority: int32(i)}
	}
	lots := make([]TaskSpec, 70000)
	for i := range lots {
		lots[i] = TaskSpec{Type: "t", Priority: 1}
	}
	bigReq := map[string]string{}
	for i := range 17 {
		bigReq[fmt.Sprint("k", i)] = "=v"
	}
	return []*Submit{
		{},
		{Version: ProtocolVersion, Tasks: []TaskSpec{}},
		{Version: math.MaxUint16, Tasks: []TaskSpec{{}}},
		{Version: ProtocolVersion, Tasks: []TaskSpec{
			{Type: "resize", Payload: []byte("img-1"), Priority: DefaultPriority, Requirements: map[string]string{"gpu": "=a100"}, MaxAttempts: 3},
			{Type: "resize", Payload: []byte{}, Priority: math.MinInt32, MaxAttempts: math.MaxInt32, Requirements: map[string]string{}},
			{Type: long, Payload: []byte(long), Priority: -1, Size: 2.5},
			{Type: huge, Payload: []byte(huge), Pin: "exec-1"},
			{Type: "s", Size: math.Inf(-1), Pin: long},
			{Type: "s", Size: math.SmallestNonzeroFloat64, Requirements: bigReq},
		}},
		{Version: 1, Tasks: many},
		{Version: 1, Tasks: lots},
	}
}

func TestSubmitFastEncodeIsMsgpack(t *testing.T) {
	for i, s := range submitSamples() {
		want, err := msgpack.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendSubmit(nil, s)
		// Requirements with several entries encode in map order: compare
		// those by decoding, the rest byte for byte.
		if !bytes.Equal(got, want) {
			dec, err := reflectDecodeSubmit(got)
			if err != nil || !reflect.DeepEqual(dec, s) {
				t.Fatalf("sample %d: fast encoding differs from msgpack and decodes to %+v, %v", i, dec, err)
			}
			if len(got) != len(want) {
				t.Fatalf("sample %d: %d bytes, msgpack writes %d", i, len(got), len(want))
			}
		}
		if n := submitSize(s); len(got) > n {
			t.Fatalf("sample %d: %d bytes, sized %d", i, len(got), n)
		}
	}
}

func TestSubmitFastDecodeMatchesMsgpack(t *testing.T) {
	for i, s := range submitSamples() {
		b, _ := msgpack.Marshal(s)
		got, ok := decodeSubmit(b)
		if !ok {
			t.Fatalf("sample %d: fast decoder refused msgpack's own encoding", i)
		}
		want, err := reflectDecodeSubmit(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("sample %d: fast %+v, msgpack %+v", i, got, want)
		}
	}
}

// Forms msgpack/v5 does not write are left to it (ok=false), so they decode
// as before.
func TestSubmitFastDecodeLeavesOtherFormsToMsgpack(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	task := []any{"noop", []byte("p"), 50, nil, 0}
	for name, b := range map[string][]byte{
		"unknown key":        enc(map[string]any{"v": 1, "extra": 1}),
		"repeated key":       {0x82, 0xa1, 'v', 0x01, 0xa1, 'v', 0x02},
		"version too large":  enc(map[string]any{"v": 70000}),
		"negative version":   enc(map[string]any{"v": -1}),
		"payload as str":     enc(map[string]any{"tasks": []any{[]any{"noop", "p", 50, nil, 0}}}),
		"type as bin":        enc(map[string]any{"tasks": []any{[]any{[]byte("noop"), []byte("p"), 50, nil, 0}}}),
		"priority overflow":  enc(map[string]any{"tasks": []any{[]any{"noop", []byte("p"), int64(1) << 40, nil, 0}}}),
		"size as float32":    enc(map[string]any{"tasks": []any{append(task, float32(1.5), "")}}),
		"eight elements":     enc(map[string]any{"tasks": []any{append(task, 1.5, "", 1)}}),
		"four elements":      enc(map[string]any{"tasks": []any{task[:4]}}),
		"top-level array":    enc([]any{1, nil}),
		"tasks not an array": enc(map[string]any{"tasks": 3}),
		"trailing byte":      append(enc(&Submit{Version: 1}), 0x00),
	} {
		if _, ok := decodeSubmit(b); ok {
			t.Errorf("%s: fast decoder accepted %x", name, b)
		}
	}
}

// FuzzSubmitFast: the fast decoder never panics, and whatever it accepts
// msgpack/v5 decodes to the same Submit; what it encodes, it decodes.
func FuzzSubmitFast(f *testing.F) {
	for _, s := range submitSamples()[:5] {
		b, _ := msgpack.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckShape(b) != nil {
			return // Registry.Decode refuses it before either decoder
		}
		got, ok := decodeSubmit(b)
		if !ok {
			return
		}
		want, err := reflectDecodeSubmit(b)
		if err != nil {
			t.Fatalf("fast decoder accepted what msgpack refuses (%v): %x", err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast %+v, msgpack %+v", got, want)
		}
		again, ok := decodeSubmit(appendSubmit(nil, got))
		if !ok || !reflect.DeepEqual(again, got) {
			t.Fatalf("re-encoded %+v decodes to %+v (%v)", got, again, ok)
		}
	})
}

func reflectDecodeAck(b []byte) (*SubmitAck, error) {
	a := &SubmitAck{}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(false)
	return a, dec.Decode(a)
}

func TestSubmitAckFastCodec(t *testing.T) {
	many := make([]uint64, 70000)
	for i := range many {
		many[i] = uint64(i) << 20
	}
	for i, a := range []*SubmitAck{{}, {IDs: []uint64{}}, {IDs: []uint64{0, 1, 127, 128, math.MaxUint64}}, {IDs: many}} {
		want, _ := msgpack.Marshal(a)
		got, ok := appendSubmitAck(nil, a)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("ack %d: fast encoding %x, msgpack %x", i, got, want)
		}
		dec, ok := decodeSubmitAck(want)
		ref, err := reflectDecodeAck(want)
		if !ok || err != nil || !reflect.DeepEqual(dec, ref) {
			t.Fatalf("ack %d: fast decode %+v (%v), msgpack %+v (%v)", i, dec, ok, ref, err)
		}
	}
	if _, ok := appendSubmitAck(nil, &SubmitAck{Err: Errorf(CodeInvalid, "x")}); ok {
		t.Fatal("an ack with an error took the fast encoder")
	}
	// Left to msgpack/v5: an error field, a negative id, other keys.
	for name, v := range map[string]any{
		"error":       &SubmitAck{Err: Errorf(CodeInvalid, "x")},
		"negative id": map[string]any{"ids": []any{-1}},
		"other key":   map[string]any{"idz": []any{1}},
		"ids not ids": map[string]any{"ids": 3},
	} {
		b, _ := msgpack.Marshal(v)
		if _, ok := decodeSubmitAck(b); ok {
			t.Errorf("%s: fast decoder accepted %x", name, b)
		}
	}
}

// FuzzSubmitAckFast: whatever the fast ack decoder accepts msgpack/v5
// decodes to the same ack.
func FuzzSubmitAckFast(f *testing.F) {
	for _, a := range []*SubmitAck{{}, {IDs: []uint64{1, 2, math.MaxUint64}}} {
		b, _ := msgpack.Marshal(a)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckShape(b) != nil {
			return
		}
		got, ok := decodeSubmitAck(b)
		if !ok {
			return
		}
		want, err := reflectDecodeAck(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("fast %+v, msgpack %+v (%v): %x", got, want, err, b)
		}
	})
}

func benchSubmit() *Submit {
	s := &Submit{Version: ProtocolVersion}
	for i := range 333 {
		p := make([]byte, 256)
		p[0] = byte(i)
		s.Tasks = append(s.Tasks, TaskSpec{Type: "noop", Payload: p, Priority: DefaultPriority})
	}
	return s
}

// go test ./messages -bench Submit -benchmem: a forwarded batch of 333 tasks
// with 256-byte payloads (W1 over three nodes), msgpack/v5 against the fast
// codec.
func BenchmarkSubmitEncode(b *testing.B) {
	s := benchSubmit()
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = marshal(s)
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendSubmit(make([]byte, 0, submitSize(s)), s)
		}
	})
}

func BenchmarkSubmitDecode(b *testing.B) {
	data := appendSubmit(nil, benchSubmit())
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = reflectDecodeSubmit(data)
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeSubmit(data)
		}
	})
}
