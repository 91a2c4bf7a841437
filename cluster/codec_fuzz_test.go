package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/shoalrt/shoal/messages"
)

// FuzzUnwrap feeds arbitrary bytes through the path a remote message takes:
// remote's protobuf deserializer for google.protobuf.Any (what an envelope's
// bytes become on the receiving node), then Codec.Unwrap. Nothing may panic;
// a shoal TypeUrl must decode or give a CodeInvalid *messages.Error; anything
// else must pass through untouched; and an accepted message must wrap and
// unwrap again.
func FuzzUnwrap(f *testing.F) {
	c := NewCodec(messages.Default())
	for _, m := range sampleMessages() {
		env, err := c.wrap(m)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, env := range []*anypb.Any{
		{TypeUrl: "type.googleapis.com/google.protobuf.Empty"},
		{TypeUrl: "shoal/shoal.Nope", Value: []byte{0x80}},
		{TypeUrl: "shoal/shoal.SubmitAck", Value: []byte{0x81, 0xa3, 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}},
	} {
		b, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, wire []byte) {
		arrived, err := remote.Deserialize(wire, "google.protobuf.Any", 0)
		if err != nil {
			return // remote drops the batch; the codec never sees it
		}
		env := arrived.(*anypb.Any)
		msg, wrapped, err := c.Unwrap(env)
		if !strings.HasPrefix(env.TypeUrl, TypeURLPrefix) {
			if wrapped || err != nil || msg != arrived {
				t.Fatalf("foreign Any %q: Unwrap = %v, %v, %v; want it unchanged", env.TypeUrl, msg, wrapped, err)
			}
			return
		}
		if !wrapped {
			t.Fatalf("shoal Any %q not recognized", env.TypeUrl)
		}
		if err != nil {
			if !errors.Is(err, messages.ErrInvalid) || msg != nil {
				t.Fatalf("%q: Unwrap = %v, %v (%T); want nil and CodeInvalid", env.TypeUrl, msg, err, err)
			}
			return
		}
		again, err := c.wrap(msg)
		if err != nil {
			t.Fatalf("%q: accepted %T does not wrap: %v", env.TypeUrl, msg, err)
		}
		if again.TypeUrl != env.TypeUrl {
			t.Fatalf("decoded %q as %T, which wraps as %q", env.TypeUrl, msg, again.TypeUrl)
		}
		if _, _, err := c.Unwrap(again); err != nil {
			t.Fatalf("%q: re-wrapped message does not unwrap: %v", env.TypeUrl, err)
		}
	})
}
