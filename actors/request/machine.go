// Package request is the intake actor (S0.1): it validates submissions,
// assigns ids, computes each task's dedupe digest, and hands the batch to the
// store. Only after the batch is durable is the client acknowledged.
package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// Config is the intake's validation policy.
type Config struct {
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
	// StandbyLimit is how many tasks may wait in standby before intake
	// refuses new work with CodeOverloaded. Default 1,000,000.
	StandbyLimit int64
	// MaxInflight bounds the tasks accepted but not yet durable (queued for
	// the store's group commit). Past it intake refuses with CodeOverloaded
	// instead of blocking: a slow disk never turns into an unbounded mailbox.
	// Default 100,000.
	MaxInflight int64
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxPayloadBytes:    1 << 20,
		MaxBatch:           10_000,
		MaxTypeLen:         128,
		HighMin:            70,
		LowMax:             29,
		DefaultMaxAttempts: 3,
		MaxAttempts:        100,
		StandbyLimit:       1_000_000,
		MaxInflight:        100_000,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxPayloadBytes <= 0:
		return fmt.Errorf("request: MaxPayloadBytes must be > 0, got %d", c.MaxPayloadBytes)
	case c.MaxBatch <= 0:
		return fmt.Errorf("request: MaxBatch must be > 0, got %d", c.MaxBatch)
	case c.MaxTypeLen <= 0:
		return fmt.Errorf("request: MaxTypeLen must be > 0, got %d", c.MaxTypeLen)
	case c.LowMax < messages.MinPriority || c.HighMin > messages.MaxPriority || c.LowMax >= c.HighMin:
		return fmt.Errorf("request: need %d <= LowMax < HighMin <= %d, got LowMax=%d HighMin=%d",
			messages.MinPriority, messages.MaxPriority, c.LowMax, c.HighMin)
	case c.DefaultMaxAttempts <= 0 || c.DefaultMaxAttempts > c.MaxAttempts:
		return fmt.Errorf("request: need 0 < DefaultMaxAttempts <= MaxAttempts, got %d and %d", c.DefaultMaxAttempts, c.MaxAttempts)
	case c.StandbyLimit <= 0:
		return fmt.Errorf("request: StandbyLimit must be > 0, got %d", c.StandbyLimit)
	case c.MaxInflight <= 0:
		return fmt.Errorf("request: MaxInflight must be > 0, got %d", c.MaxInflight)
	}
	return nil
}

// ClassOf maps a priority onto its class.
func (c Config) ClassOf(priority int32) messages.Class {
	switch {
	case priority >= c.HighMin:
		return messages.ClassHigh
	case priority <= c.LowMax:
		return messages.ClassLow
	}
	return messages.ClassNormal
}

// Machine validates and numbers submissions. It does no I/O.
type Machine struct {
	cfg      Config
	nextID   uint64
	standby  int64
	inflight int64          // accepted, not yet durable
	hash     *blake3.Hasher // reused: a fresh hasher per task costs more than hashing 256 bytes
}

// New returns a machine whose next id follows maxID (the store's high-water mark).
func New(cfg Config, maxID uint64) *Machine {
	return &Machine{cfg: cfg, nextID: maxID + 1}
}

// SetStandby records how many tasks wait before the queues (admission
// control): the pump's standby count plus the tasks accepted that the pump
// has not classified yet (not yet durable, or durable and on their way).
func (m *Machine) SetStandby(n int64) { m.standby = n }

// Committed records that n accepted tasks are durable (or failed to be).
func (m *Machine) Committed(n int) { m.inflight -= int64(n) }

// Inflight is the number of accepted tasks not yet durable.
func (m *Machine) Inflight() int64 { return m.inflight }

// Accept validates s and returns the records to persist, or a typed error.
// On error no id is consumed and nothing is to be written.
func (m *Machine) Accept(now time.Time, s *messages.Submit) ([]task.Record, *messages.Error) {
	return m.AcceptDigested(now, s, nil)
}

// Validate checks a whole submission (version, batch size, every task)
// without admission control and without consuming ids: what a cluster node
// checks before it splits a batch among owners, so that bad input is refused
// before anything is written anywhere.
func (m *Machine) Validate(s *messages.Submit) *messages.Error {
	if err := m.checkBatch(s); err != nil {
		return err
	}
	for i := range s.Tasks {
		if err := m.check(i, &s.Tasks[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *Machine) checkBatch(s *messages.Submit) *messages.Error {
	if s.Version != messages.ProtocolVersion {
		return messages.Errorf(messages.CodeVersion, "protocol version %d, this node speaks %d", s.Version, messages.ProtocolVersion)
	}
	n := len(s.Tasks)
	if n == 0 {
		return messages.Errorf(messages.CodeInvalid, "submit carries no task")
	}
	if n > m.cfg.MaxBatch {
		return messages.Errorf(messages.CodeInvalid, "batch of %d tasks exceeds the limit of %d; split it", n, m.cfg.MaxBatch)
	}
	return nil
}

// AcceptDigested is Accept with the tasks' digests already computed (by this
// node's router, with Digest): len(digests) == len(s.Tasks), or nil to
// compute them here.
func (m *Machine) AcceptDigested(now time.Time, s *messages.Submit, digests []task.Digest) ([]task.Record, *messages.Error) {
	if err := m.checkBatch(s); err != nil {
		return nil, err
	}
	n := len(s.Tasks)
	if digests != nil && len(digests) != n {
		return nil, messages.Errorf(messages.CodeInternal, "%d digests for %d tasks", len(digests), n)
	}
	// Tasks not yet classified may all end in standby: they count too, so
	// the limit holds however fast submissions arrive.
	if m.standby+int64(n) > m.cfg.StandbyLimit {
		return nil, messages.Errorf(messages.CodeOverloaded, "%d tasks already wait in standby or on their way to it (limit %d); retry later", m.standby, m.cfg.StandbyLimit)
	}
	if m.inflight > 0 && m.inflight+int64(n) > m.cfg.MaxInflight {
		return nil, messages.Errorf(messages.CodeOverloaded, "%d tasks are waiting for the disk (limit %d); retry later", m.inflight, m.cfg.MaxInflight)
	}
	for i := range s.Tasks {
		if err := m.check(i, &s.Tasks[i]); err != nil {
			return nil, err
		}
	}
	recs := make([]task.Record, n)
	ts := now.UnixNano()
	for i := range s.Tasks {
		t := &s.Tasks[i]
		max := t.MaxAttempts
		if max == 0 {
			max = m.cfg.DefaultMaxAttempts
		}
		recs[i] = task.Record{
			ID:           m.nextID,
			Type:         t.Type,
			Payload:      t.Payload,
			Priority:     t.Priority,
			Class:        m.cfg.ClassOf(t.Priority),
			Digest:       m.digestOf(digests, i, t),
			Requirements: withPlacement(t),
			MaxAttempts:  max,
			SubmittedAt:  ts,
		}
		m.nextID++
	}
	m.inflight += int64(n)
	// Once durable these leave inflight and, if they wait, show up in the
	// pump's standby count, which the shell reads before every Accept.
	return recs, nil
}

func (m *Machine) digestOf(digests []task.Digest, i int, t *messages.TaskSpec) task.Digest {
	if digests != nil {
		return digests[i]
	}
	return m.Digest(t.Type, t.Payload)
}

func (m *Machine) check(i int, t *messages.TaskSpec) *messages.Error {
	switch {
	case t.Type == "":
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is empty")
	case len(t.Type) > m.cfg.MaxTypeLen:
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is %d bytes, the limit is %d", len(t.Type), m.cfg.MaxTypeLen)
	case !utf8.ValidString(t.Type):
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type is not valid UTF-8")
	case strings.IndexByte(t.Type, 0) >= 0:
		// Digest separates the type from the payload with a NUL byte.
		return messages.TaskErrorf(messages.CodeInvalid, i, "task type contains a NUL byte")
	case len(t.Payload) > m.cfg.MaxPayloadBytes:
		return messages.TaskErrorf(messages.CodePayloadTooLarge, i, "payload is %d bytes, the limit is %d", len(t.Payload), m.cfg.MaxPayloadBytes)
	case t.Priority < messages.MinPriority || t.Priority > messages.MaxPriority:
		return messages.TaskErrorf(messages.CodeBadPriority, i, "priority %d is outside [%d, %d]", t.Priority, messages.MinPriority, messages.MaxPriority)
	case t.MaxAttempts < 0 || t.MaxAttempts > m.cfg.MaxAttempts:
		return messages.TaskErrorf(messages.CodeInvalid, i, "max attempts %d is outside [0, %d]", t.MaxAttempts, m.cfg.MaxAttempts)
	}
	for k, v := range t.Requirements {
		if k == messages.ReqSize {
			// Reserved: set from Size, and kept by tasks re-submitted from
			// the store (adoption).
			if f, err := strconv.ParseFloat(strings.TrimPrefix(v, "="), 64); err != nil || !strings.HasPrefix(v, "=") || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return messages.TaskErrorf(messages.CodeBadRequirement, i, "requirement %s is reserved for the task's size (\"=<number>\"), got %q", k, v)
			}
			continue
		}
		if err := task.ParseRequirement(k, v); err != nil {
			return messages.TaskErrorf(messages.CodeBadRequirement, i, "%v", err)
		}
	}
	switch {
	case math.IsNaN(t.Size) || math.IsInf(t.Size, 0) || t.Size < 0:
		return messages.TaskErrorf(messages.CodeInvalid, i, "size %v must be a finite number >= 0", t.Size)
	case len(t.Pin) > 256:
		return messages.TaskErrorf(messages.CodeInvalid, i, "pin is %d bytes, at most 256", len(t.Pin))
	}
	return nil
}

// withPlacement returns t's requirements with its size and pin under the
// reserved keys (messages.ReqSize, ReqPin): dispatch reads them there, and
// both stores keep them without a layout change.
func withPlacement(t *messages.TaskSpec) map[string]string {
	if t.Size == 0 && t.Pin == "" {
		return t.Requirements
	}
	req := make(map[string]string, len(t.Requirements)+2)
	maps.Copy(req, t.Requirements)
	if t.Size > 0 {
		req[messages.ReqSize] = "=" + strconv.FormatFloat(t.Size, 'g', -1, 64)
	}
	if t.Pin != "" {
		req[messages.ReqPin] = "=" + t.Pin
	}
	return req
}

// Digest is blake3 over the task type and its digest fields (or the whole
// payload). Field values are compacted JSON so that formatting does not
// change the digest.
func (m *Machine) Digest(typ string, payload []byte) task.Digest {
	if m.hash == nil {
		m.hash = blake3.New()
	}
	h := m.hash
	h.Reset()
	h.WriteString(typ)
	h.Write([]byte{0})
	if fields := m.cfg.DigestFields[typ]; len(fields) == 0 || !digestFields(h, fields, payload) {
		h.Write(payload)
	}
	var d task.Digest
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
