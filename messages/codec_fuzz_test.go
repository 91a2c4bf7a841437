package messages

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// decodeAllocBudget bounds what Decode may allocate for an input of n bytes:
// a fixed allowance plus a per-input-byte factor. The largest element types
// (TaskSpec, Result) are under 100 bytes and every element takes at least one
// input byte, so a correct decoder stays far below it; a length prefix taken
// on trust (the msgpack/v5.4.1 slice bug) exceeds it by orders of magnitude.
func decodeAllocBudget(n int) uint64 { return 1<<20 + 256*uint64(n) }

// FuzzDecode feeds arbitrary bytes to Registry.Decode under every registered
// name. Decode must not panic, must not allocate out of proportion to its
// input, must refuse with a CodeInvalid *Error, and whatever it accepts must
// re-encode into bytes that decode to the same message.
func FuzzDecode(f *testing.F) {
	r := Default()
	names := registeredNames(r)
	index := map[string]uint8{}
	for i, n := range names {
		index[n] = uint8(i)
	}
	for _, m := range sampleMessages() {
		name, b, err := r.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(index[name], b)
	}
	f.Add(index["shoal.Submit"], []byte{0x81, 0xa5, 't', 'a', 's', 'k', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, idx uint8, b []byte) {
		name := names[int(idx)%len(names)]
		before := allocatedBytes()
		msg, err := r.Decode(name, b)
		if grew := allocatedBytes() - before; grew > decodeAllocBudget(len(b)) {
			t.Fatalf("%s: decoding %d bytes allocated %d bytes", name, len(b), grew)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: err = %v (%T), want CodeInvalid", name, err, err)
			}
			return
		}
		name2, b2, err := r.Encode(msg)
		if err != nil {
			t.Fatalf("%s: re-encode of an accepted message: %v", name, err)
		}
		if name2 != name {
			t.Fatalf("decoded %s as %T, which encodes as %s", name, msg, name2)
		}
		msg2, err := r.Decode(name, b2)
		if err != nil {
			t.Fatalf("%s: re-encoded bytes do not decode: %v", name, err)
		}
		if !sameMessage(msg, msg2) {
			t.Fatalf("%s: round trip changed the message:\n%#v\n%#v", name, msg, msg2)
		}
	})
}

// FuzzCheckShape cross-checks CheckShape against msgpack/v5's own Skip: any
// input CheckShape accepts must be one complete msgpack value to msgpack too,
// and any complete value msgpack accepts must pass CheckShape unless it nests
// deeper than MaxNesting.
func FuzzCheckShape(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := msgpack.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, v := range []any{nil, true, -1, int64(math.MinInt64), uint64(math.MaxUint64), 1.5, float32(2.5),
		"", strings.Repeat("s", 300), []byte{1, 2}, []any{}, map[string]any{"a": []any{1, "b"}},
		time.Unix(1700000000, 5).UTC()} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		shapeErr := CheckShape(b)
		r := bytes.NewReader(b)
		dec := msgpack.NewDecoder(r)
		skipErr := dec.Skip()
		complete := skipErr == nil && r.Len() == 0
		if shapeErr == nil && !complete {
			t.Fatalf("CheckShape accepted %x; msgpack: err=%v, %d bytes left", b, skipErr, r.Len())
		}
		if shapeErr != nil && complete && !strings.Contains(shapeErr.Error(), "nesting") {
			t.Fatalf("CheckShape refused %x (%v), msgpack reads it whole", b, shapeErr)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus of FuzzDecode from
// sampleMessages: SHOAL_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds ./messages/
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SHOAL_WRITE_SEEDS") == "" {
		t.Skip("set SHOAL_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzDecode/seed-*")
	}
	r := Default()
	index := map[string]int{}
	for i, n := range registeredNames(r) {
		index[n] = i
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range sampleMessages() {
		name, b, err := r.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", byte(index[name]), b)
		file := filepath.Join(dir, "seed-"+strings.TrimPrefix(name, "shoal."))
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
