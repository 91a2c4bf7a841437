package messages

// Well-known actor names on every node. A client or executor in another
// process addresses them as actor.NewPID(nodeAddress, name).
const (
	ActorIntake   = "shoal-intake"   // Submit → SubmitAck
	ActorResults  = "shoal-results"  // Wait → Outcomes
	ActorDedupe   = "shoal-dedupe"   // Cancel → Outcomes
	ActorDispatch = "shoal-dispatch" // Register, Pull, Heartbeat → Registered, Grant
	ActorStatus   = "shoal-status"   // StatusRequest → Status
	ActorServers  = "shoal-servers"  // ServersRequest → Servers
)
