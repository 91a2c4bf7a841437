package messages

// Flows (S2.2–S2.6): a flow is an instance of a named template, run by the
// node's flow runner as a durable task of type FlowTaskType. Clients start
// flows with RunFlows, wait for them with the ordinary Wait on the flow's id
// (the outcome's Output is the assembled result), cancel them with the
// ordinary Cancel, and look at a running flow's steps with FlowGet.

// ActorFlows is the node's flow actor: RegisterTemplate → TemplateAck,
// ListTemplates → TemplateList, RunFlows → RunFlowsAck, FlowGet → FlowStatus.
const ActorFlows = "shoal-flows"

// FlowTaskType is the reserved task type of a flow instance.
const FlowTaskType = "shoal.flow"

// RegisterTemplate registers a flow template from its YAML or JSON text.
// Registering the same text again is a no-op that returns the same version;
// a changed text under the same name becomes the next version.
type RegisterTemplate struct {
	Version uint16 `msgpack:"v"`
	Spec    []byte `msgpack:"spec"`
}

// TemplateInfo describes one registered template version.
type TemplateInfo struct {
	Name    string   `msgpack:"name"`
	Version int32    `msgpack:"version"`
	Steps   []string `msgpack:"steps"`
	Inputs  []string `msgpack:"inputs,omitempty"`
	Spec    []byte   `msgpack:"spec,omitempty"` // canonical JSON
}

// TemplateAck answers RegisterTemplate.
type TemplateAck struct {
	Template TemplateInfo `msgpack:"template"`
	Err      *Error       `msgpack:"err,omitempty"`
}

// ListTemplates asks for the registered templates (latest version of each
// unless All).
type ListTemplates struct {
	All bool `msgpack:"all,omitempty"`
}

// TemplateList answers ListTemplates.
type TemplateList struct {
	Templates []TemplateInfo `msgpack:"templates"`
	Err       *Error         `msgpack:"err,omitempty"`
}

// FlowSpec is one flow a client starts.
type FlowSpec struct {
	Template string `msgpack:"template"`
	// TemplateVersion picks a version; 0 takes the latest.
	TemplateVersion int32 `msgpack:"tv,omitempty"`
	// Input is a JSON object, normalised against the template's inputs.
	Input []byte `msgpack:"input,omitempty"`
	// Priority is the flow's priority; its steps queue in its class. 0 with
	// HasPriority false takes the template's (default 50).
	Priority    int32 `msgpack:"prio,omitempty"`
	HasPriority bool  `msgpack:"has_prio,omitempty"`
}

// RunFlows starts flows (all or none, like Submit).
type RunFlows struct {
	Version uint16     `msgpack:"v"`
	Flows   []FlowSpec `msgpack:"flows"`
}

// RunFlowsAck answers RunFlows once every flow is durable: one id per flow.
type RunFlowsAck struct {
	IDs []uint64 `msgpack:"ids,omitempty"`
	Err *Error   `msgpack:"err,omitempty"`
}

// FlowGet asks for a flow's state and, while it runs, its steps.
type FlowGet struct {
	ID uint64 `msgpack:"id"`
}

// StepStatus is one step of a running flow.
type StepStatus struct {
	Name   string    `msgpack:"name"`
	Type   string    `msgpack:"type"`
	State  TaskState `msgpack:"state"` // StateUnknown: not submitted yet (waits for its inputs)
	TaskID uint64    `msgpack:"task,omitempty"`
	// Shared is set when the step's task joined an identical one (another
	// flow's, or an earlier result): it did not run again.
	Shared bool `msgpack:"shared,omitempty"`
}

// FlowStatus answers FlowGet.
type FlowStatus struct {
	ID              uint64       `msgpack:"id"`
	Template        string       `msgpack:"template,omitempty"`
	TemplateVersion int32        `msgpack:"tv,omitempty"`
	Outcome         Outcome      `msgpack:"outcome"`
	Steps           []StepStatus `msgpack:"steps,omitempty"`
	Err             *Error       `msgpack:"err,omitempty"`
}

// addFlows registers the flow messages (called by Default).
func addFlows(add func(name string, mk func() any)) {
	add("shoal.RegisterTemplate", func() any { return &RegisterTemplate{} })
	add("shoal.TemplateAck", func() any { return &TemplateAck{} })
	add("shoal.ListTemplates", func() any { return &ListTemplates{} })
	add("shoal.TemplateList", func() any { return &TemplateList{} })
	add("shoal.RunFlows", func() any { return &RunFlows{} })
	add("shoal.RunFlowsAck", func() any { return &RunFlowsAck{} })
	add("shoal.FlowGet", func() any { return &FlowGet{} })
	add("shoal.FlowStatus", func() any { return &FlowStatus{} })
}
