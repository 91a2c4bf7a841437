package messages

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Task's hand-written codec, for the reason TaskSpec has one
// (taskspec_codec.go): msgpack/v5's reflection decoder refuses an array
// whose length differs from the struct's field count. A task without a
// timeout is encoded as protocol 1's 5 elements (id, type, payload, prio,
// attempt), which every build decodes; one with a timeout has a 6th,
// timeout_ms. The decoder accepts 5 or more elements and skips any past
// the 6th. An executor built before timeouts refuses a grant carrying a
// timed task: the node enforces the timeout without it (by revoking the
// lease), but such an executor cannot decode the grant, so upgrade
// executors before submitting tasks with timeouts.
const (
	taskFieldsV1 = 5
	taskFields   = 6
)

var (
	_ msgpack.CustomEncoder = (*Task)(nil)
	_ msgpack.CustomDecoder = (*Task)(nil)
)

// taskLen is the element count t is encoded with.
func taskLen(t *Task) int {
	if t.TimeoutMillis != 0 {
		return taskFields
	}
	return taskFieldsV1
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t *Task) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := taskLen(t)
	if err := enc.EncodeArrayLen(n); err != nil {
		return err
	}
	if err := enc.EncodeUint64(t.ID); err != nil {
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
	if err := enc.EncodeInt32(t.Attempt); err != nil {
		return err
	}
	if n == taskFieldsV1 {
		return nil
	}
	return enc.EncodeInt64(t.TimeoutMillis)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (t *Task) DecodeMsgpack(dec *msgpack.Decoder) error {
	*t = Task{}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < taskFieldsV1 {
		return fmt.Errorf("task: %d elements, want at least %d", n, taskFieldsV1)
	}
	if t.ID, err = dec.DecodeUint64(); err != nil {
		return fmt.Errorf("task id: %w", err)
	}
	if t.Type, err = dec.DecodeString(); err != nil {
		return fmt.Errorf("task type: %w", err)
	}
	if t.Payload, err = dec.DecodeBytes(); err != nil {
		return fmt.Errorf("task payload: %w", err)
	}
	if t.Priority, err = dec.DecodeInt32(); err != nil {
		return fmt.Errorf("task prio: %w", err)
	}
	if t.Attempt, err = dec.DecodeInt32(); err != nil {
		return fmt.Errorf("task attempt: %w", err)
	}
	if n > taskFieldsV1 {
		if t.TimeoutMillis, err = dec.DecodeInt64(); err != nil {
			return fmt.Errorf("task timeout_ms: %w", err)
		}
	}
	for i := taskFields; i < n; i++ {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	return nil
}
