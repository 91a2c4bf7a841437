package messages

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fastNames are the messages fastcodec.go encodes and decodes.
var fastNames = []string{"shoal.Submit", "shoal.SubmitAck", "shoal.Grant", "shoal.Pull", "shoal.Heartbeat"}

// reflectDecode is Registry.Decode's msgpack/v5 path.
func reflectDecode(t testing.TB, name string, b []byte) (any, error) {
	mk, ok := Default().byName[name]
	if !ok {
		t.Fatalf("no message %s", name)
	}
	msg := mk()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(false)
	return msg, dec.Decode(msg)
}

// identical: the same values (floats bit for bit, NaN too) and the same
// nil-ness of every slice and map (%#v prints []byte(nil) and []byte{}).
func identical(a, b any) bool {
	return sameMessage(a, b) && fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// fastSamples cover every branch of the fast encoders: each length class of
// strings, bytes, arrays and maps, nil against empty, omitted fields, 5 and
// 7 element task specs, extreme ints and floats.
func fastSamples() []any {
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
	ids := make([]uint64, 70000)
	for i := range ids {
		ids[i] = uint64(i) << 20
	}
	load := LoadReport{CPU: 0.5, Mem: math.Inf(1), IO: -0.125, InFlight: math.MaxInt32}
	// The servers view's fields (S3.4), each alone and all together.
	full := LoadReport{CPU: 0.25, Mem: 0.5, IO: 0.1, InFlight: 3, Disk: 0.75, Procs: 412, IP: "10.0.0.7"}
	ipOnly := LoadReport{IP: long}
	procsOnly := LoadReport{Procs: math.MinInt32}
	diskOnly := LoadReport{Disk: math.SmallestNonzeroFloat64}
	results := []Result{
		{TaskID: 1, Attempt: 1, OK: true, RunNanos: 1500},
		{TaskID: math.MaxUint64, Attempt: math.MinInt32, Output: []byte{}, Error: long, Permanent: true, RunNanos: math.MinInt64},
		{TaskID: 3, Output: []byte(huge), Error: "e", RunNanos: math.MaxInt64},
	}
	tasks := []Task{{ID: 1, Type: "noop", Payload: []byte("p"), Priority: 50, Attempt: 1},
		{ID: math.MaxUint64, Type: long, Payload: []byte{}, Priority: -1, Attempt: math.MaxInt32}, {Type: "noop"},
		{ID: 9, Type: "noop", Attempt: 2, TimeoutMillis: 1500}, {ID: 10, Type: "slow", TimeoutMillis: math.MinInt64}}
	return []any{
		&Submit{},
		&Submit{Version: ProtocolVersion, Tasks: []TaskSpec{}},
		&Submit{Version: math.MaxUint16, Tasks: []TaskSpec{{}}},
		&Submit{Version: ProtocolVersion, Tasks: []TaskSpec{
			{Type: "resize", Payload: []byte("img-1"), Priority: DefaultPriority, Requirements: map[string]string{"gpu": "=a100"}, MaxAttempts: 3},
			{Type: "resize", Payload: []byte{}, Priority: math.MinInt32, MaxAttempts: math.MaxInt32, Requirements: map[string]string{}},
			{Type: long, Payload: []byte(long), Priority: -1, Size: 2.5},
			{Type: huge, Payload: []byte(huge), Pin: "exec-1"},
			{Type: "s", Size: math.Inf(-1), Pin: long},
			{Type: "s", Size: math.SmallestNonzeroFloat64, Requirements: bigReq},
			{Type: "timed", TimeoutMillis: 30000},
			{Type: "timed", Size: 1, Pin: "p", TimeoutMillis: math.MaxInt64},
		}},
		&Submit{Version: 1, Tasks: many},
		&Submit{Version: 1, Tasks: lots},
		&SubmitAck{},
		&SubmitAck{IDs: []uint64{}},
		&SubmitAck{IDs: []uint64{0, 1, 127, 128, math.MaxUint64}},
		&SubmitAck{IDs: ids},
		&Grant{},
		&Grant{Tasks: tasks, Cancel: []uint64{7, math.MaxUint64}, LeaseTTLMillis: 30000, Sleep: true, HeartbeatMillis: -1},
		&Grant{Tasks: []Task{}, Cancel: []uint64{}, LeaseTTLMillis: math.MinInt64},
		&Pull{},
		&Pull{ExecutorID: long, Load: load, Free: -3, Results: results, Held: ids},
		&Pull{ExecutorID: "ex", Results: []Result{}, Held: []uint64{}},
		&Heartbeat{},
		&Heartbeat{ExecutorID: "ex-1", Load: load, Held: []uint64{1}, Results: results, Unhealthy: "disk full"},
		&Heartbeat{ExecutorID: huge, Results: make([]Result, 1000)},
		&Pull{ExecutorID: "ex", Load: full, Free: 2},
		&Pull{ExecutorID: "ex", Load: diskOnly},
		&Heartbeat{ExecutorID: "ex", Load: ipOnly, Unhealthy: "u"},
		&Heartbeat{ExecutorID: "ex", Load: procsOnly, Held: []uint64{2}},
	}
}

func TestFastEncodeIsMsgpack(t *testing.T) {
	for i, m := range fastSamples() {
		want, err := msgpack.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendFast(m)
		if !ok {
			t.Fatalf("sample %d (%T): fast encoder declined", i, m)
		}
		// Requirements with several entries encode in map order: compare
		// those by decoding, the rest byte for byte.
		if !bytes.Equal(got, want) {
			dec, err := reflectDecode(t, Default().Name(m), got)
			if err != nil || !identical(dec, m) || len(got) != len(want) {
				t.Fatalf("sample %d (%T): fast encoding differs from msgpack's:\n%x\n%x", i, m, got, want)
			}
		}
		if cap(got) < len(got) || cap(got) > 3*len(got)+128 {
			t.Fatalf("sample %d (%T): %d bytes in a buffer of %d (sized badly)", i, m, len(got), cap(got))
		}
	}
}

func TestFastDecodeMatchesMsgpack(t *testing.T) {
	for i, m := range fastSamples() {
		name := Default().Name(m)
		b, _ := msgpack.Marshal(m)
		got, ok := decodeFast(name, b)
		if !ok {
			t.Fatalf("sample %d (%T): fast decoder declined msgpack's own encoding", i, m)
		}
		want, err := reflectDecode(t, name, b)
		if err != nil {
			t.Fatal(err)
		}
		if !identical(got, want) {
			t.Fatalf("sample %d: fast %+v, msgpack %+v", i, got, want)
		}
	}
}

// What the fast codec does not handle goes to msgpack/v5, unchanged.
func TestFastCodecLeavesOtherFormsToMsgpack(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	task := []any{"noop", []byte("p"), 50, nil, 0}
	for _, c := range []struct {
		name, msg string
		b         []byte
	}{
		{"unknown key", "shoal.Submit", enc(map[string]any{"v": 1, "extra": 1})},
		{"repeated key", "shoal.Submit", []byte{0x82, 0xa1, 'v', 0x01, 0xa1, 'v', 0x02}},
		{"version too large", "shoal.Submit", enc(map[string]any{"v": 70000})},
		{"negative version", "shoal.Submit", enc(map[string]any{"v": -1})},
		{"payload as str", "shoal.Submit", enc(map[string]any{"tasks": []any{[]any{"noop", "p", 50, nil, 0}}})},
		{"type as bin", "shoal.Submit", enc(map[string]any{"tasks": []any{[]any{[]byte("noop"), []byte("p"), 50, nil, 0}}})},
		{"priority overflow", "shoal.Submit", enc(map[string]any{"tasks": []any{[]any{"noop", []byte("p"), int64(1) << 40, nil, 0}}})},
		{"size as float32", "shoal.Submit", enc(map[string]any{"tasks": []any{append(task, float32(1.5), "")}})},
		{"nine elements", "shoal.Submit", enc(map[string]any{"tasks": []any{append(task, 1.5, "", 1, 2)}})},
		{"timeout as float", "shoal.Submit", enc(map[string]any{"tasks": []any{append(task, 1.5, "", 1.5)}})},
		{"seven-element task", "shoal.Grant", enc(map[string]any{"tasks": []any{[]any{1, "noop", []byte("p"), 50, 1, 2, 3}}})},
		{"four elements", "shoal.Submit", enc(map[string]any{"tasks": []any{task[:4]}})},
		{"top-level array", "shoal.Submit", enc([]any{1, nil})},
		{"tasks not an array", "shoal.Submit", enc(map[string]any{"tasks": 3})},
		{"trailing byte", "shoal.Submit", append(enc(&Submit{Version: 1}), 0x00)},
		{"ack error", "shoal.SubmitAck", enc(&SubmitAck{Err: Errorf(CodeInvalid, "x")})},
		{"negative id", "shoal.SubmitAck", enc(map[string]any{"ids": []any{-1}})},
		{"grant error", "shoal.Grant", enc(&Grant{Err: Errorf(CodeInvalid, "x")})},
		{"task as a map", "shoal.Grant", enc(map[string]any{"tasks": []any{map[string]any{"id": 1}}})},
		{"result of six", "shoal.Heartbeat", enc(map[string]any{"results": []any{[]any{1, 1, true, nil, "", false}}})},
		{"ok as nil", "shoal.Pull", enc(map[string]any{"results": []any{[]any{1, 1, nil, nil, "", false, 0}}})},
		{"load as int", "shoal.Pull", enc(map[string]any{"load": map[string]any{"cpu": 1}})},
		{"unknown load key", "shoal.Heartbeat", enc(map[string]any{"load": map[string]any{"gpu": 1.0}})},
	} {
		if _, ok := decodeFast(c.msg, c.b); ok {
			t.Errorf("%s: fast decoder accepted %x", c.name, c.b)
		}
	}
	for _, m := range []any{&SubmitAck{Err: Errorf(CodeInvalid, "x")}, &Grant{Err: Errorf(CodeInvalid, "x")}, &Wait{}} {
		if _, ok := appendFast(m); ok {
			t.Errorf("%T: fast encoder took it", m)
		}
	}
}

// FuzzFastCodec: the fast decoder never panics, whatever it accepts
// msgpack/v5 decodes to the same message, and what it decodes re-encodes to
// bytes it decodes to the same message again.
func FuzzFastCodec(f *testing.F) {
	for _, m := range fastSamples() {
		b, _ := msgpack.Marshal(m)
		if len(b) < 4096 {
			f.Add(uint8(0), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		if CheckShape(b) != nil {
			return // Registry.Decode refuses it before either decoder
		}
		for i := range fastNames {
			name := fastNames[(int(which)+i)%len(fastNames)]
			got, ok := decodeFast(name, b)
			if !ok {
				continue
			}
			want, err := reflectDecode(t, name, b)
			if err != nil {
				t.Fatalf("%s: fast decoder accepted what msgpack refuses (%v): %x", name, err, b)
			}
			if !identical(got, want) {
				t.Fatalf("%s: fast %+v, msgpack %+v", name, got, want)
			}
			re, ok := appendFast(got)
			if !ok {
				t.Fatalf("%s: fast encoder declined %+v", name, got)
			}
			if again, ok := decodeFast(name, re); !ok || !identical(again, got) {
				t.Fatalf("%s: re-encoded %+v decodes to %+v (%v)", name, got, again, ok)
			}
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

func benchHeartbeat() *Heartbeat {
	h := &Heartbeat{ExecutorID: "bench-w7-source-0001", Results: make([]Result, 1000)}
	for i := range h.Results {
		h.Results[i] = Result{TaskID: 1<<48 + uint64(i), Attempt: 1, OK: true, RunNanos: 1500}
	}
	return h
}

// go test ./messages -bench Fast -benchmem: a forwarded batch of 333 tasks
// with 256-byte payloads (W1 over three nodes) and a heartbeat of 1,000
// results (W7 batched), msgpack/v5 against the fast codec.
func BenchmarkFastEncode(b *testing.B) {
	for _, m := range []any{benchSubmit(), benchHeartbeat()} {
		b.Run(fmt.Sprintf("%T/msgpack", m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = marshal(m)
			}
		})
		b.Run(fmt.Sprintf("%T/fast", m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = appendFast(m)
			}
		})
	}
}

func BenchmarkFastDecode(b *testing.B) {
	for _, m := range []any{benchSubmit(), benchHeartbeat()} {
		name := Default().Name(m)
		data, _ := msgpack.Marshal(m)
		b.Run(fmt.Sprintf("%T/msgpack", m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = reflectDecode(b, name, data)
			}
		})
		b.Run(fmt.Sprintf("%T/fast", m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = decodeFast(name, data)
			}
		})
	}
}
