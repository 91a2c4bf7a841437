package messages

import (
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
