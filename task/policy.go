package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
)

// Policy is what a node accepts as a task: the limits every submission is
// checked against, the priority classes, and how duplicates are recognised.
// The intake actor, a cluster router and the SDK's owner routing all check
// and digest with the same Policy, so they agree on every task.
type Policy struct {
	// MaxPayloadBytes bounds one task's payload. Default 1 MiB.
	MaxPayloadBytes int
	// MaxBatch bounds the tasks of one Submit. Default 10,000.
	MaxBatch int
	// MaxTypeLen bounds a task type's length in bytes. Default 128.
	MaxTypeLen int
	// HighMin is the lowest priority of the high class; LowMax the highest
	// priority of the low class. Defaults 70 and 29: [70,100] high,
	// [30,69] normal, [0,29] low.
	HighMin, LowMax int32
	// DefaultMaxAttempts is used when a task asks for 0. Default 3.
	DefaultMaxAttempts int32
	// MaxAttempts caps what a task may ask for. Default 100.
	MaxAttempts int32
	// DigestFields names, per task type, the top-level JSON fields of the
	// payload that identify a duplicate (in this order). A type without an
	// entry, or a payload that is not a JSON object, is digested whole.
	DigestFields map[string][]string
}

// DefaultPolicy returns the documented defaults.
func DefaultPolicy() Policy {
	return Policy{
		MaxPayloadBytes:    1 << 20,
		MaxBatch:           10_000,
		MaxTypeLen:         128,
		HighMin:            70,
		LowMax:             29,
		DefaultMaxAttempts: 3,
		MaxAttempts:        100,
	}
}

// Validate names the first bad field.
func (p Policy) Validate() error {
	switch {
	case p.MaxPayloadBytes <= 0:
		return fmt.Errorf("request: MaxPayloadBytes must be > 0, got %d", p.MaxPayloadBytes)
	case p.MaxBatch <= 0:
		return fmt.Errorf("request: MaxBatch must be > 0, got %d", p.MaxBatch)
	case p.MaxTypeLen <= 0:
		return fmt.Errorf("request: MaxTypeLen must be > 0, got %d", p.MaxTypeLen)
	case p.LowMax < messages.MinPriority || p.HighMin > messages.MaxPriority || p.LowMax >= p.HighMin:
		return fmt.Errorf("request: need %d <= LowMax < HighMin <= %d, got LowMax=%d HighMin=%d",
			messages.MinPriority, messages.MaxPriority, p.LowMax, p.HighMin)
	case p.DefaultMaxAttempts <= 0 || p.DefaultMaxAttempts > p.MaxAttempts:
		return fmt.Errorf("request: need 0 < DefaultMaxAttempts <= MaxAttempts, got %d and %d", p.DefaultMaxAttempts, p.MaxAttempts)
	}
	return nil
}

// ClassOf maps a priority onto its class.
func (p Policy) ClassOf(priority int32) messages.Class {
	switch {
	case priority >= p.HighMin:
		return messages.ClassHigh
	case priority <= p.LowMax:
		return messages.ClassLow
	}
	return messages.ClassNormal
}

// Checker checks submissions against a Policy and digests their tasks. It
// reuses one blake3 hasher (a fresh hasher per task costs more than hashing
// 256 bytes), so it belongs to one goroutine at a time.
type Checker struct {
	Policy
	hash *blake3.Hasher
}

// NewChecker returns a Checker for p.
func NewChecker(p Policy) *Checker { return &Checker{Policy: p} }

// Validate checks a whole submission (version, batch size, every task)
// without admission control and without consuming ids: what a cluster node
// checks before it splits a batch among owners, so that bad input is refused
// before anything is written anywhere.
func (c *Checker) Validate(s *messages.Submit) *messages.Error {
	if err := c.CheckBatch(s); err != nil {
		return err
	}
	for i := range s.Tasks {
		if err := c.Check(i, &s.Tasks[i]); err != nil {
			return err
		}
	}
	return nil
}

// CheckBatch checks what belongs to the whole submission: the protocol
// version and the batch size.
func (c *Checker) CheckBatch(s *messages.Submit) *messages.Error {
	if s.Version != messages.ProtocolVersion {
		return messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", s.Version, messages.ProtocolVersion)
	}
	n := len(s.Tasks)
	if n == 0 {
		return messages.Errorf(messages.CodeInvalid, "submit carries no task")
	}
	if n > c.MaxBatch {
		return messages.Errorf(messages.CodeInvalid, "batch of %d tasks exceeds the limit of %d; split it", n, c.MaxBatch)
	}
	return nil
}

// Check checks task i of a submission.
func (c *Checker) Check(i int, t *messages.TaskSpec) *messages.Error {
	switch {
	case t.Type == "":
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is empty")
	case len(t.Type) > c.MaxTypeLen:
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is %d bytes, the limit is %d", len(t.Type), c.MaxTypeLen)
	case !utf8.ValidString(t.Type):
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is not valid UTF-8")
	case strings.IndexByte(t.Type, 0) >= 0:
		// Digest separates the type from the payload with a NUL byte.
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type contains a NUL byte")
	case len(t.Payload) > c.MaxPayloadBytes:
		return messages.TaskErrorf(messages.CodePayloadTooLarge, i, "payload is %d bytes, the limit is %d", len(t.Payload), c.MaxPayloadBytes)
	case t.Priority < messages.MinPriority || t.Priority > messages.MaxPriority:
		return messages.TaskErrorf(messages.CodeBadPriority, i, "priority %d is outside [%d, %d]", t.Priority, messages.MinPriority, messages.MaxPriority)
	case t.MaxAttempts < 0 || t.MaxAttempts > c.MaxAttempts:
		return messages.TaskErrorf(messages.CodeInvalid, i, "max attempts %d is outside [0, %d]", t.MaxAttempts, c.MaxAttempts)
	}
	if _, _, err := Placement(t.Requirements); err != nil {
		// Reserved keys: set from Size and Pin, and kept by tasks
		// re-submitted from the store (adoption).
		return messages.TaskErrorf(messages.CodeBadRequirement, i, "%v", err)
	}
	for k, v := range t.Requirements {
		if k == messages.ReqSize || k == messages.ReqPin {
			continue
		}
		if err := ParseRequirement(k, v); err != nil {
			return messages.TaskErrorf(messages.CodeBadRequirement, i, "%v", err)
		}
	}
	switch {
	case math.IsNaN(t.Size) || math.IsInf(t.Size, 0) || t.Size < 0:
		return messages.TaskErrorf(messages.CodeInvalid, i, "size %v must be a finite number >= 0", t.Size)
	case len(t.Pin) > 256:
		return messages.TaskErrorf(messages.CodeInvalid, i, "pin is %d bytes, at most 256", len(t.Pin))
	case t.TimeoutMillis < 0:
		return messages.TaskErrorf(messages.CodeInvalid, i, "timeout_ms %d must be >= 0 (0: the task type's default)", t.TimeoutMillis)
	}
	return nil
}

// Digest is blake3 over the task type and its digest fields (or the whole
// payload). Field values are compacted JSON so that formatting does not
// change the digest.
func (c *Checker) Digest(typ string, payload []byte) Digest {
	if c.hash == nil {
		c.hash = blake3.New()
	}
	h := c.hash
	h.Reset()
	h.WriteString(typ)
	h.Write([]byte{0})
	if fields := c.DigestFields[typ]; len(fields) == 0 || !digestFields(h, fields, payload) {
		h.Write(payload)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// digestFields writes fields of a JSON object payload to h, each value
// compacted; false (nothing written) when payload is not a JSON object.
// Apart from Digest so that its map does not cost the common case (no
// digest fields) a heap allocation.
func digestFields(h *blake3.Hasher, fields []string, payload []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil || obj == nil {
		return false
	}
	var buf bytes.Buffer
	for _, f := range fields {
		buf.Reset()
		if raw, ok := obj[f]; ok {
			_ = json.Compact(&buf, raw)
		}
		h.WriteString(f)
		h.Write([]byte{0})
		h.Write(buf.Bytes())
		h.Write([]byte{0})
	}
	return true
}
