package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoalrt/shoal/messages"
)

// Untrusted request bodies: decoding never panics, and a refusal is always
// invalid or payload_too_large (a 4xx), never an internal error.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"tasks": [{"type": "echo", "payload": "x", "priority": 5}]}`,
		`{"tasks": [{"type": "echo", "payload": {"a": [1, 2]}, "payload_base64": "eA=="}]}`,
		`{"ids": [1, 2], "timeout_ms": 10}`,
		`{"max": 3, "results": [{"id": 1, "attempt": 1, "ok": true, "output_base64": "AAE="}], "load": {"cpu": 2}}`,
		`{"flows": [{"template": "t", "input": {"a": 1}}]}`,
		`{"tasks": [`, `[]`, `null`, `{} {}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&submitIn{}, &waitIn{}, &leaseIn{}, &heartbeatIn{}, &registerIn{}, &runFlowsIn{}, &templateIn{}}
		for _, v := range targets {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			r.Body = http.MaxBytesReader(w, r.Body, 1024)
			e := decode(r, v)
			if e != nil && e.Code != messages.CodeInvalid && e.Code != messages.CodePayloadTooLarge {
				t.Fatalf("decode %T: code %v (%s)", v, e.Code, e.Message)
			}
			if e == nil {
				exercise(t, v)
			}
		}
	})
}

// exercise runs the conversions a handler applies after decoding.
func exercise(t *testing.T, v any) {
	switch in := v.(type) {
	case *submitIn:
		for _, tk := range in.Tasks {
			_, _ = payloadOf(tk.Payload, tk.PayloadBase64)
		}
	case *leaseIn:
		if _, e := resultsOf(in.Results); e != nil && e.Code != messages.CodeInvalid {
			t.Fatalf("resultsOf: %v", e)
		}
		l := loadOf(in.Load)
		if l.CPU < 0 || l.CPU > 1 || l.Mem < 0 || l.Mem > 1 || l.IO < 0 || l.IO > 1 {
			t.Fatalf("load %+v not clamped to [0, 1]", l)
		}
	case *heartbeatIn:
		_, _ = resultsOf(in.Results)
	}
}

// A payload given as a JSON string is its text; any other JSON value is its
// compact encoding; base64 is raw bytes.
func FuzzPayloadOf(f *testing.F) {
	f.Add(`"hello"`, "")
	f.Add(`{"a": 1}`, "")
	f.Add(``, "AAEC")
	f.Add(`"x"`, "eA==")
	f.Fuzz(func(t *testing.T, raw, b64 string) {
		got, err := payloadOf(json.RawMessage(raw), b64)
		if err != nil {
			return
		}
		var s string
		if b64 == "" && json.Unmarshal([]byte(raw), &s) == nil && !bytes.Equal(got, []byte(s)) {
			t.Fatalf("payload %q: got %q, want the string's text %q", raw, got, s)
		}
		text, enc := textOrBase64(got)
		back, err := bytesOf(text, enc)
		if err != nil || !bytes.Equal(back, got) {
			t.Fatalf("output round trip of %q: %q, %v", got, back, err)
		}
	})
}
