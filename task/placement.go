package task

import (
	"fmt"
	"math"
	"strconv"

	"github.com/shoalrt/shoal/messages"
)

// A task's placement: its declared size and its pin. A client sends them as
// messages.TaskSpec.Size and Pin; the node keeps them in the task's
// requirements under the reserved keys (messages.ReqSize "=<size>",
// messages.ReqPin "=<executor id>"), where they are also what a re-submitted
// record (adoption) and a set-aside shape carry, and, parsed once at intake,
// in Record.Size and Record.Pin, which is what placement reads.

// Placement lifts the size and pin out of a requirements map (0 and "" for
// a key that is absent). A reserved key whose value does not follow its
// grammar is an error naming it.
func Placement(req map[string]string) (size float64, pin string, err error) {
	if v, ok := req[messages.ReqSize]; ok {
		if size, ok = parseSize(v); !ok {
			return 0, "", fmt.Errorf("requirement %s is reserved for the task's size (\"=<number>\"), got %q", messages.ReqSize, v)
		}
	}
	if v, ok := req[messages.ReqPin]; ok {
		if pin, ok = parsePin(v); !ok {
			return 0, "", fmt.Errorf("requirement %s is reserved for the task's pin (\"=<executor id>\"), got %q", messages.ReqPin, v)
		}
	}
	return size, pin, nil
}

// SizeRequirement is the value of the reserved size key for size (> 0).
func SizeRequirement(size float64) string {
	return "=" + strconv.FormatFloat(size, 'g', -1, 64)
}

// PinRequirement is the value of the reserved pin key for an executor id.
func PinRequirement(pin string) string { return "=" + pin }

// DerivePlacement sets r.Size and r.Pin from r.Requirements: for records
// stored before Size and Pin were fields. A malformed reserved value yields
// 0 or "" (what placement read it as then) rather than an error, so an old
// record stays readable.
func (r *Record) DerivePlacement() {
	r.Size, r.Pin = 0, ""
	if v, ok := r.Requirements[messages.ReqSize]; ok {
		r.Size, _ = parseSize(v)
	}
	if v, ok := r.Requirements[messages.ReqPin]; ok {
		r.Pin, _ = parsePin(v)
	}
}

// parsePin parses "=<executor id>". The id is the text after "=", whatever
// it is: placement compares the value with "=" + the executor's id.
func parsePin(v string) (string, bool) {
	if len(v) < 2 || v[0] != '=' {
		return "", false
	}
	return v[1:], true
}

// parseSize parses "=<number>", a finite number >= 0.
func parseSize(v string) (float64, bool) {
	if len(v) < 2 || v[0] != '=' {
		return 0, false
	}
	f, err := strconv.ParseFloat(v[1:], 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
