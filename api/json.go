package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/shoalrt/shoal/messages"
)

// errorBody is every error response: {"error": {...}}.
type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Index names the offending task of a batch.
	Index *int32 `json:"index,omitempty"`
}

// HTTPStatus maps a wire error code to an HTTP status.
func HTTPStatus(c messages.ErrorCode) int {
	switch c {
	case messages.CodeOK:
		return http.StatusOK
	case messages.CodeInvalid, messages.CodeBadPriority, messages.CodeBadRequirement, messages.CodeVersion:
		return http.StatusBadRequest
	case messages.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case messages.CodeOverloaded:
		return http.StatusTooManyRequests
	case messages.CodeNotFound:
		return http.StatusNotFound
	case messages.CodeUnauthorized:
		return http.StatusUnauthorized
	case messages.CodeUnavailable:
		return http.StatusServiceUnavailable
	case messages.CodeTimeout:
		return http.StatusGatewayTimeout
	case messages.CodeUnknownExecutor:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // an API, not a page: keep < > & readable
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *messages.Error) {
	body := errorBody{Error: errorJSON{Code: e.Code.String(), Message: e.Message}}
	if e.Index >= 0 {
		i := e.Index
		body.Error.Index = &i
	}
	if e.Code == messages.CodeOverloaded {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, HTTPStatus(e.Code), body)
}

// decode reads one JSON object into v: unknown fields, trailing data and an
// over-long body are refused with a message saying what was wrong.
func decode(r *http.Request, v any) *messages.Error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return messages.Errorf(messages.CodeInvalid, "bad JSON: trailing data after the request object")
	}
	return nil
}

func jsonError(err error) *messages.Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		big *http.MaxBytesError
	)
	switch {
	case errors.As(err, &big):
		return messages.Errorf(messages.CodePayloadTooLarge, "request body is over the limit of %d bytes", big.Limit)
	case errors.Is(err, io.EOF):
		return messages.Errorf(messages.CodeInvalid, "bad JSON: empty request body; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return messages.Errorf(messages.CodeInvalid, "bad JSON: the body ends in the middle of a value")
	case errors.As(err, &syn):
		return messages.Errorf(messages.CodeInvalid, "bad JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the request"
		}
		return messages.Errorf(messages.CodeInvalid, "bad JSON: %s must be %s, got %s", field, typ.Type, typ.Value)
	}
	return messages.Errorf(messages.CodeInvalid, "bad JSON: %v", err)
}

// pathID parses the {id} path segment as a task id.
func pathID(r *http.Request) (uint64, *messages.Error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 {
		return 0, messages.Errorf(messages.CodeInvalid, "task id %q: want a positive integer", raw)
	}
	return id, nil
}

// Bytes on the wire: a payload or output is JSON text when it is valid
// UTF-8, else base64 in the *_base64 field.

// payloadOf reads a task payload: a JSON string is taken as its text, any
// other JSON value as its (compacted) JSON encoding, and payload_base64 as
// raw bytes. At most one of the two may be set.
func payloadOf(raw json.RawMessage, b64 string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	hasRaw := len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
	switch {
	case hasRaw && b64 != "":
		return nil, errors.New("set payload or payload_base64, not both")
	case b64 != "":
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("payload_base64: %v", err)
		}
		return b, nil
	case !hasRaw:
		return nil, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("payload: %v", err)
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("payload: %v", err)
	}
	return buf.Bytes(), nil
}

// textOrBase64 splits bytes into a text field or a base64 field.
func textOrBase64(b []byte) (text *string, b64 string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// bytesOf reads an output given as text or base64.
func bytesOf(text *string, b64 string) ([]byte, error) {
	switch {
	case text != nil && b64 != "":
		return nil, errors.New("set output or output_base64, not both")
	case b64 != "":
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("output_base64: %v", err)
		}
		return b, nil
	case text != nil:
		return []byte(*text), nil
	}
	return nil, nil
}
