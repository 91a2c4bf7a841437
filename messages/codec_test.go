package messages

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime/metrics"
	"slices"
	"sort"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// sampleMessages returns one populated value of every registered message.
// TestSamplesCoverRegistry fails when a message is registered without one.
func sampleMessages() []any {
	load := LoadReport{CPU: 0.5, Mem: 0.25, IO: 0.125, InFlight: 3}
	return []any{
		&Submit{Version: ProtocolVersion, Tasks: []TaskSpec{
			{Type: "resize", Payload: []byte("img-1"), Priority: DefaultPriority,
				Requirements: map[string]string{"gpu": "=a100", "cuda": ">= 12.0, < 13"}, MaxAttempts: 3},
			{Type: "noop", Priority: MaxPriority},
		}},
		&SubmitAck{IDs: []uint64{1, 2, math.MaxUint64}},
		&Register{Version: ProtocolVersion, ExecutorID: "ex-1", Types: []string{"resize", "noop"}, Slots: 8,
			Capabilities: map[string]string{"gpu": "a100"}, Token: "secret"},
		&Registered{LeaseTTLMillis: 30000, HeartbeatMillis: 5000},
		&Pull{ExecutorID: "ex-1", Load: load, Free: 2,
			Results: []Result{{TaskID: 7, Attempt: 1, OK: true, Output: []byte("out"), RunNanos: 1234},
				{TaskID: 8, Attempt: 2, Error: "boom", Permanent: true}},
			Held: []uint64{9, 10}},
		&Grant{Tasks: []Task{{ID: 11, Type: "resize", Payload: []byte{0, 1, 2}, Priority: 10, Attempt: 1}},
			Cancel: []uint64{12}, LeaseTTLMillis: 30000, Sleep: true, HeartbeatMillis: 7500},
		&Heartbeat{ExecutorID: "ex-1", Load: load, Held: []uint64{9}, Results: []Result{{TaskID: 9, OK: true}}, Unhealthy: "disk full"},
		&Drain{ExecutorID: "ex-1", Undo: true},
		&DrainAck{State: ExecDraining, Leases: 3, Err: Errorf(CodeNotFound, "no executor")},
		&Pause{Types: []string{"resize"}, Classes: []string{"low"}, Resume: true},
		&PauseAck{Types: []string{"resize"}, Classes: []string{"high"}, Err: Errorf(CodeInvalid, "bad class")},
		&ServersRequest{Local: true, History: "ip:10.0.0.7"},
		&Servers{Node: "n1", At: 1700000000000, Servers: []ServerStatus{{ID: "ip:10.0.0.7", IP: "10.0.0.7", CPU: 0.5, Mem: 0.25, Disk: 0.5,
			Procs: 200, Queue: 3, Slots: 4, At: 1700000000000, Nodes: []string{"n1"},
			Executors: []ServerExecutor{{ID: "w1", Kind: ServerKindWorker, Node: "n1", CPU: 0.5, Queue: 3, Slots: 4, At: 1700000000000}}}},
			History: []ServerSample{{At: 1700000000000, CPU: 0.5, Queue: 3, Executors: 1}}, ResolutionMillis: 10000, Keep: 2160,
			Unreachable: []string{"n2"}},
		&Wait{IDs: []uint64{1, 2, 3}, TimeoutMillis: 1000},
		&Outcomes{Outcomes: []Outcome{{TaskID: 1, State: StateDone, Output: []byte("ok"), Attempts: 1},
			{TaskID: 2, State: StateAttached, AliasOf: 1}}, Err: Errorf(CodeTimeout, "waited %d ms", 1000)},
		&Cancel{IDs: []uint64{4}},
		&StatusRequest{},
		&Status{Node: "n1", Classes: []ClassStatus{{Class: "high", Queued: 5, Standby: 1}},
			Executors: []ExecutorStatus{{ID: "ex-1", Slots: 8, Leases: 2, Load: load, LastSeen: 1700000000000},
				{ID: "ex-2", State: ExecFailed, IdleSince: 17, Unhealthy: "x", Launched: true, Restarts: 3}},
			Counters: map[string]int64{"submitted": 10, "done": 9},
			Alerts:   []Alert{{At: 1, Node: "n1", Executor: "ex-2", Kind: "restart_limit", Message: "gave up", Failures: 3}}},
		TaskErrorf(CodeBadPriority, 3, "priority %d outside [%d, %d]", 101, MinPriority, MaxPriority),
		&NodeLoad{Node: "n1", Queued: [NumClasses]int64{1, 2, 3}, Standby: 4, FreeSlots: 5, DrainRate: 1234.5, At: 1700000000000},
		&RegisterTemplate{Version: ProtocolVersion, Spec: []byte("name: t\nsteps:\n - {name: a, type: echo}\n")},
		&TemplateAck{Template: TemplateInfo{Name: "t", Version: 2, Steps: []string{"a", "b"}, Inputs: []string{"x"}, Spec: []byte(`{"name":"t"}`)}},
		&ListTemplates{All: true},
		&TemplateList{Templates: []TemplateInfo{{Name: "t", Version: 1, Steps: []string{"a"}}}, Err: Errorf(CodeNotFound, "none")},
		&RunFlows{Version: ProtocolVersion, Flows: []FlowSpec{{Template: "t", TemplateVersion: 1, Input: []byte(`{"x":1}`), Priority: 80, HasPriority: true}}},
		&RunFlowsAck{IDs: []uint64{5, 6}},
		&FlowGet{ID: 5},
		&FlowStatus{ID: 5, Template: "t", TemplateVersion: 1, Outcome: Outcome{TaskID: 5, State: StateLeased},
			Steps: []StepStatus{{Name: "a", Type: "echo", State: StateDone, TaskID: 7, Shared: true}}},
	}
}

func registeredNames(r *Registry) []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sameMessage reports whether a and b hold the same message. Unlike
// reflect.DeepEqual it treats a nil and an empty slice or map alike (msgpack
// omitempty turns one into the other) and compares floats by their bits, so
// that a NaN equals itself.
func sameMessage(a, b any) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	}
	panic("sameValue: unhandled kind " + a.Kind().String())
}

func TestSameMessage(t *testing.T) {
	nan := math.NaN()
	if !sameMessage(&Pull{Load: LoadReport{CPU: nan}, Held: []uint64{}}, &Pull{Load: LoadReport{CPU: nan}}) {
		t.Error("NaN or nil-vs-empty compared unequal")
	}
	if sameMessage(&Pull{Held: []uint64{1}}, &Pull{Held: []uint64{2}}) {
		t.Error("different ids compared equal")
	}
	if sameMessage(&Status{Counters: map[string]int64{"a": 1}}, &Status{Counters: map[string]int64{"b": 1}}) {
		t.Error("different maps compared equal")
	}
}

func TestSamplesCoverRegistry(t *testing.T) {
	r := Default()
	var got []string
	for _, m := range sampleMessages() {
		name := r.Name(m)
		if name == "" {
			t.Fatalf("%T is not registered", m)
		}
		got = append(got, name)
	}
	sort.Strings(got)
	if want := registeredNames(r); !slices.Equal(got, want) {
		t.Fatalf("samples cover %v, registry has %v", got, want)
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	r := Default()
	for _, m := range sampleMessages() {
		name, b, err := r.Encode(m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		got, err := r.Decode(name, b)
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip changed the message:\n got %#v\nwant %#v", name, got, m)
		}
	}
}

func TestDecodeRefusesWithInvalid(t *testing.T) {
	r := Default()
	cases := map[string]struct {
		name string
		b    []byte
	}{
		"unknown name": {"shoal.Nope", []byte{0x80}},
		"empty":        {"shoal.Submit", nil},
		"truncated":    {"shoal.Submit", []byte{0x81, 0xa5, 't', 'a', 's', 'k', 's', 0x92, 0x80}},
		"trailing":     {"shoal.Cancel", []byte{0x80, 0x80}},
		"wrong type":   {"shoal.Cancel", []byte{0x81, 0xa3, 'i', 'd', 's', 0xa1, 'x'}},
		"never used":   {"shoal.Cancel", []byte{0xc1}},
		// An array32 header claiming 2^32-1 tasks in a 12-byte input:
		// msgpack/v5.4.1 would allocate them all before reading one.
		"array bomb": {"shoal.Submit", []byte{0x81, 0xa5, 't', 'a', 's', 'k', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		"map bomb":   {"shoal.Status", []byte{0x81, 0xa8, 'c', 'o', 'u', 'n', 't', 'e', 'r', 's', 0xdf, 0xff, 0xff, 0xff, 0xff}},
		"str bomb":   {"shoal.Register", []byte{0x81, 0xa8, 'e', 'x', 'e', 'c', 'u', 't', 'o', 'r', 0xdb, 0xff, 0xff, 0xff, 0xff}},
		"too deep":   {"shoal.Cancel", append(bytes.Repeat([]byte{0x91}, 10000), 0xc0)},
	}
	for label, c := range cases {
		t.Run(label, func(t *testing.T) {
			before := allocatedBytes()
			msg, err := r.Decode(c.name, c.b)
			if grew := allocatedBytes() - before; grew > 1<<20 {
				t.Errorf("decoding %d bytes allocated %d bytes", len(c.b), grew)
			}
			if err == nil {
				t.Fatalf("decoded %#v, want an error", msg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want CodeInvalid", err)
			}
		})
	}
}

// TestDecodeKeepsUnknownFieldsWorking pins forward compatibility: a newer
// sender may add fields, nested ones included.
func TestDecodeKeepsUnknownFieldsWorking(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{
		"ids":    []uint64{1, 2},
		"future": map[string]any{"nested": []any{1, "two", []byte{3}, map[string]any{"x": 1.5}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Default().Decode("shoal.Cancel", b)
	if err != nil {
		t.Fatalf("decode with unknown fields: %v", err)
	}
	if got := msg.(*Cancel).IDs; !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("ids = %v", got)
	}
}

func TestCheckShapeNesting(t *testing.T) {
	nested := func(depth int) []byte { return append(bytes.Repeat([]byte{0x91}, depth), 0xc0) }
	if err := CheckShape(nested(MaxNesting)); err != nil {
		t.Errorf("%d levels: %v", MaxNesting, err)
	}
	if err := CheckShape(nested(MaxNesting + 1)); err == nil {
		t.Errorf("%d levels accepted", MaxNesting+1)
	}
	// Closed containers give their level back.
	wide := bytes.Repeat(nested(MaxNesting), 3)
	if err := CheckShape(append([]byte{0x93}, wide...)); err == nil {
		t.Errorf("%d levels inside an array accepted", MaxNesting)
	}
	if err := CheckShape(append([]byte{0x93}, bytes.Repeat(nested(MaxNesting-1), 3)...)); err != nil {
		t.Errorf("three siblings of %d levels: %v", MaxNesting-1, err)
	}
}

// allocatedBytes is the process's cumulative heap allocation.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkDecode shows what CheckShape adds to a decode.
func BenchmarkDecode(b *testing.B) {
	tasks := make([]TaskSpec, 1000)
	for i := range tasks {
		tasks[i] = TaskSpec{Type: "t", Payload: make([]byte, 64), Priority: DefaultPriority}
	}
	r := Default()
	name, enc, err := r.Encode(&Submit{Version: ProtocolVersion, Tasks: tasks})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("step=check-shape/tasks=1000", func(b *testing.B) {
		for b.Loop() {
			if err := CheckShape(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("step=decode/tasks=1000", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Decode(name, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
