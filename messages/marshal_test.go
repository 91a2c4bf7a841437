package messages

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// marshal encodes exactly as msgpack.Marshal, and a result does not share
// memory with the pooled buffer (a later encoding leaves it unchanged).
func TestMarshalMatchesMsgpack(t *testing.T) {
	msgs := []any{
		&Submit{Version: ProtocolVersion, Tasks: []TaskSpec{{Type: "a", Payload: bytes.Repeat([]byte{7}, 300), Priority: 5, Requirements: map[string]string{"gpu": "=yes"}}, {Type: "b"}}},
		&SubmitAck{IDs: []uint64{1, 2, 3}},
		&Error{Code: CodeInvalid, Message: "bad"},
		&Status{},
	}
	var prev, prevWant []byte
	for _, m := range msgs {
		got, err := marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%T: marshal differs from msgpack.Marshal", m)
		}
		if prev != nil && !bytes.Equal(prev, prevWant) {
			t.Fatal("an earlier result changed: it shares the pooled buffer")
		}
		prev, prevWant = got, want
	}
	if _, err := marshal(make(chan int)); err == nil {
		t.Fatal("an unencodable value encoded")
	}
}
