package messages

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// TaskSpec's hand-written codec. TaskSpec is a msgpack array; msgpack/v5's
// reflection decoder refuses an array whose length differs from the struct's
// field count, so adding Size and Pin needs this codec to keep both
// directions compatible:
//   - a task without Size and Pin is encoded as the original 5 elements
//     (type, payload, prio, req, max_attempts), which older builds decode;
//   - the decoder accepts 5 to 8 elements (and skips any further ones a
//     newer build may add), so older clients' tasks decode with Size 0;
//   - TimeoutMillis, added later, is an 8th element written only when set:
//     a task without it is encoded as before (5 or 7 elements), and older
//     builds, which skip elements past the 7th, read one with it.
const (
	taskSpecFieldsV1 = 5
	taskSpecFieldsV2 = 7
	taskSpecFields   = 8
)

// taskSpecLen is the element count t is encoded with.
func taskSpecLen(t *TaskSpec) int {
	switch {
	case t.TimeoutMillis != 0:
		return taskSpecFields
	case t.Size != 0 || t.Pin != "":
		return taskSpecFieldsV2
	}
	return taskSpecFieldsV1
}

var (
	_ msgpack.CustomEncoder = (*TaskSpec)(nil)
	_ msgpack.CustomDecoder = (*TaskSpec)(nil)
)

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t *TaskSpec) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := taskSpecLen(t)
	if err := enc.EncodeArrayLen(n); err != nil {
		return err
	}
	if err := enc.EncodeString(t.Type); err != nil {
		return err
	}
	if err := enc.EncodeBytes(t.Payload); err != nil {
		return err
	}
	if err := enc.EncodeInt32(t.Priority); err != nil {
		return err
	}
	if t.Requirements == nil {
		if err := enc.EncodeNil(); err != nil {
			return err
		}
	} else {
		if err := enc.EncodeMapLen(len(t.Requirements)); err != nil {
			return err
		}
		for k, v := range t.Requirements {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := enc.EncodeString(v); err != nil {
				return err
			}
		}
	}
	if err := enc.EncodeInt32(t.MaxAttempts); err != nil {
		return err
	}
	if n == taskSpecFieldsV1 {
		return nil
	}
	if err := enc.EncodeFloat64(t.Size); err != nil {
		return err
	}
	if err := enc.EncodeString(t.Pin); err != nil {
		return err
	}
	if n == taskSpecFieldsV2 {
		return nil
	}
	return enc.EncodeInt64(t.TimeoutMillis)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (t *TaskSpec) DecodeMsgpack(dec *msgpack.Decoder) error {
	*t = TaskSpec{}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < taskSpecFieldsV1 {
		return fmt.Errorf("task spec: %d elements, want at least %d", n, taskSpecFieldsV1)
	}
	if t.Type, err = dec.DecodeString(); err != nil {
		return fmt.Errorf("task spec type: %w", err)
	}
	if t.Payload, err = dec.DecodeBytes(); err != nil {
		return fmt.Errorf("task spec payload: %w", err)
	}
	if t.Priority, err = dec.DecodeInt32(); err != nil {
		return fmt.Errorf("task spec prio: %w", err)
	}
	m, err := dec.DecodeMapLen()
	if err != nil {
		return fmt.Errorf("task spec req: %w", err)
	}
	if m >= 0 {
		t.Requirements = make(map[string]string, m)
		for range m {
			k, err := dec.DecodeString()
			if err != nil {
				return fmt.Errorf("task spec req key: %w", err)
			}
			v, err := dec.DecodeString()
			if err != nil {
				return fmt.Errorf("task spec req value: %w", err)
			}
			t.Requirements[k] = v
		}
	}
	if t.MaxAttempts, err = dec.DecodeInt32(); err != nil {
		return fmt.Errorf("task spec max_attempts: %w", err)
	}
	if n > taskSpecFieldsV1 {
		if t.Size, err = dec.DecodeFloat64(); err != nil {
			return fmt.Errorf("task spec size: %w", err)
		}
	}
	if n > taskSpecFieldsV1+1 {
		if t.Pin, err = dec.DecodeString(); err != nil {
			return fmt.Errorf("task spec pin: %w", err)
		}
	}
	if n > taskSpecFieldsV2 {
		if t.TimeoutMillis, err = dec.DecodeInt64(); err != nil {
			return fmt.Errorf("task spec timeout_ms: %w", err)
		}
	}
	for i := taskSpecFields; i < n; i++ {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	return nil
}
