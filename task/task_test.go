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
