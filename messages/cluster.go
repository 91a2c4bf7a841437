package messages

// Actor names of a clustered node. In a cluster the well-known names
// (ActorIntake, ActorResults, ActorDedupe) are routers that any client may
// call; the node's own intake, result hub and dedupe actor answer under
// these names, which routers on other nodes call with the part of a request
// this node owns or holds. A client never needs them.
const (
	ActorOwnerIntake  = "shoal-owner-intake"  // Submit of tasks this node owns → SubmitAck
	ActorOwnerResults = "shoal-owner-results" // Wait for tasks this node holds → Outcomes
	ActorOwnerDedupe  = "shoal-owner-dedupe"  // Cancel of tasks this node holds → Outcomes
)
