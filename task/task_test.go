package task

import (
	"testing"

	"github.com/shoalrt/shoal/messages"
)

func TestOutcome(t *testing.T) {
	r := Result{ID: 3, Class: messages.ClassLow, State: messages.StateDone, Output: []byte("o"), Error: "e", Attempts: 2, AliasOf: 1, FinishedAt: 5}
	got := r.Outcome()
	if got.TaskID != 3 || got.State != messages.StateDone || string(got.Output) != "o" || got.Error != "e" || got.Attempts != 2 || got.AliasOf != 1 {
		t.Fatalf("Outcome = %+v", got)
	}
}

func TestPlacement(t *testing.T) {
	for _, c := range []struct {
		req  map[string]string
		size float64
		pin  string
		bad  bool
	}{
		{req: nil},
		{req: map[string]string{"os": "=linux"}},
		{req: map[string]string{messages.ReqSize: SizeRequirement(2.5), messages.ReqPin: PinRequirement("exec-1")}, size: 2.5, pin: "exec-1"},
		{req: map[string]string{messages.ReqSize: "=0"}},
		{req: map[string]string{messages.ReqSize: "=1e300"}, size: 1e300},
		{req: map[string]string{messages.ReqSize: "=big"}, bad: true},
		{req: map[string]string{messages.ReqSize: "2"}, bad: true},
		{req: map[string]string{messages.ReqSize: "=-1"}, bad: true},
		{req: map[string]string{messages.ReqSize: "=NaN"}, bad: true},
		{req: map[string]string{messages.ReqSize: "=+Inf"}, bad: true},
		{req: map[string]string{messages.ReqPin: "="}, bad: true},
		{req: map[string]string{messages.ReqPin: ">= 1.0"}, bad: true},
	} {
		size, pin, err := Placement(c.req)
		if (err != nil) != c.bad || size != c.size || pin != c.pin {
			t.Errorf("Placement(%v) = %v, %q, %v", c.req, size, pin, err)
		}
		// An old record derives the same, and 0 or "" where Placement
		// refuses.
		r := Record{Requirements: c.req, Size: 7, Pin: "stale"}
		r.DerivePlacement()
		if !c.bad && (r.Size != c.size || r.Pin != c.pin) {
			t.Errorf("DerivePlacement(%v) = %v, %q", c.req, r.Size, r.Pin)
		}
	}
	r := Record{Requirements: map[string]string{messages.ReqSize: "=big", messages.ReqPin: "=x"}}
	r.DerivePlacement()
	if r.Size != 0 || r.Pin != "x" {
		t.Errorf("DerivePlacement of a malformed size = %v, %q", r.Size, r.Pin)
	}
}
