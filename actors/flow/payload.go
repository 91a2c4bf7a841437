package flow

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Payload is what a flow task carries: everything needed to run or replay
// the flow, so that it resumes after a restart without its template being
// registered again. JSON, so that `shoal wait` on a flow task stays legible.
type Payload struct {
	Template string          `json:"template"`
	Version  int32           `json:"version"`
	Spec     json.RawMessage `json:"spec"`  // the template's canonical JSON
	Input    json.RawMessage `json:"input"` // the normalised input
	Priority int32           `json:"priority"`
}

// Encode returns the payload's bytes.
func (p *Payload) Encode() ([]byte, error) { return json.Marshal(p) }

// DecodePayload reads a flow task's payload (untrusted: any client can
// submit a task of the flow type).
func DecodePayload(b []byte) (*Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("flow task payload: %w", err)
	}
	switch {
	case len(p.Spec) == 0:
		return nil, fmt.Errorf("flow task payload: no template spec")
	case p.Priority < messages.MinPriority || p.Priority > messages.MaxPriority:
		return nil, fmt.Errorf("flow task payload: priority %d out of range", p.Priority)
	}
	return &p, nil
}

// Classes maps priorities onto classes (the intake's ranges).
type Classes struct {
	// HighMin is the lowest high priority; LowMax the highest low one.
	HighMin, LowMax int32
}

// Range returns the priority range of p's class.
func (c Classes) Range(p int32) (lo, hi int32) {
	switch {
	case p >= c.HighMin:
		return c.HighMin, messages.MaxPriority
	case p <= c.LowMax:
		return messages.MinPriority, c.LowMax
	}
	return c.LowMax + 1, c.HighMin - 1
}

// StepPriority is the priority of a step of a flow of priority p: the step's
// own priority (or the flow's) kept inside the flow's class, so that a
// high-priority flow's steps overtake a low one's (S2.5).
func (c Classes) StepPriority(flow int32, st *Step) int32 {
	lo, hi := c.Range(flow)
	p := flow
	if st.HasPriority {
		p = st.Priority
	}
	return min(max(p, lo), hi)
}
