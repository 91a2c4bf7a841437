package messages

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// taskSpecV1 is TaskSpec as protocol 1 first shipped it (reflection codec).
type taskSpecV1 struct {
	_msgpack     struct{} `msgpack:",as_array"`
	Type         string
	Payload      []byte
	Priority     int32
	Requirements map[string]string
	MaxAttempts  int32
}

func TestTaskSpecCodecCompatible(t *testing.T) {
	// Old encoding → new struct.
	b, err := msgpack.Marshal(&taskSpecV1{Type: "x", Payload: []byte("p"), Priority: 7, Requirements: map[string]string{"os": "=linux"}, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got TaskSpec
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode old encoding: %v", err)
	}
	want := TaskSpec{Type: "x", Payload: []byte("p"), Priority: 7, Requirements: map[string]string{"os": "=linux"}, MaxAttempts: 3}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A task without Size and Pin → old struct (older builds read it).
	b, err = msgpack.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var old taskSpecV1
	if err := msgpack.Unmarshal(b, &old); err != nil || old.Type != "x" || old.MaxAttempts != 3 || old.Requirements["os"] != "=linux" {
		t.Fatalf("old decoder: %+v, %v", old, err)
	}
	// Size and Pin round-trip.
	full := TaskSpec{Type: "y", Priority: 1, Size: 2.5, Pin: "exec-1"}
	b, err = msgpack.Marshal(&full)
	if err != nil {
		t.Fatal(err)
	}
	got = TaskSpec{}
	if err := msgpack.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Too short is an error.
	b, _ = msgpack.Marshal([]any{"x", nil})
	if err := msgpack.Unmarshal(b, &got); err == nil {
		t.Fatal("2-element task spec decoded")
	}
}

// taskV1 is Task as protocol 1 first shipped it (reflection codec).
type taskV1 struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       uint64
	Type     string
	Payload  []byte
	Priority int32
	Attempt  int32
}

func TestTimeoutCodecCompatible(t *testing.T) {
	// A task spec with a timeout: 8 elements; the 7-element decoder of the
	// previous build (TaskSpec's, which skips further elements) reads the rest.
	spec := TaskSpec{Type: "t", Priority: 3, MaxAttempts: 2, TimeoutMillis: 1500}
	b, err := msgpack.Marshal(&spec)
	if err != nil {
		t.Fatal(err)
	}
	var got TaskSpec
	if err := msgpack.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, spec) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	var n int
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if n, err = dec.DecodeArrayLen(); err != nil || n != 8 {
		t.Fatalf("timed spec has %d elements (%v), want 8", n, err)
	}
	// Without a timeout the encoding is unchanged (5 elements).
	spec.TimeoutMillis = 0
	b, _ = msgpack.Marshal(&spec)
	var old taskSpecV1
	if err := msgpack.Unmarshal(b, &old); err != nil || old.Type != "t" {
		t.Fatalf("old decoder: %+v, %v", old, err)
	}

	// Task: 5 elements without a timeout (old executors read it), 6 with.
	task := Task{ID: 7, Type: "t", Payload: []byte("p"), Priority: 1, Attempt: 2}
	b, _ = msgpack.Marshal(&task)
	var oldTask taskV1
	if err := msgpack.Unmarshal(b, &oldTask); err != nil || oldTask.ID != 7 || oldTask.Attempt != 2 {
		t.Fatalf("old task decoder: %+v, %v", oldTask, err)
	}
	b, _ = msgpack.Marshal(&taskV1{ID: 8, Type: "u", Attempt: 1})
	var gotTask Task
	if err := msgpack.Unmarshal(b, &gotTask); err != nil || gotTask.ID != 8 || gotTask.Type != "u" {
		t.Fatalf("decode old task: %+v, %v", gotTask, err)
	}
	task.TimeoutMillis = 250
	b, _ = msgpack.Marshal(&task)
	gotTask = Task{}
	if err := msgpack.Unmarshal(b, &gotTask); err != nil || !reflect.DeepEqual(gotTask, task) {
		t.Fatalf("timed task round trip: %+v, %v", gotTask, err)
	}
}
