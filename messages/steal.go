package messages

import "strings"

// StealExecutorPrefix starts the executor id a node's stealer registers
// under at a peer ("steal/<node>", cluster/steal).
const StealExecutorPrefix = "steal/"

// IsStealExecutor tells whether an executor id is another node's stealer.
// Its slots are that node's capacity, not the capacity of the node it is
// attached to: free slots and types reported for stealing and load gossip
// leave it out, or a loaded node whose only executor is a stealer would look
// able to run its own queue (and would never be stolen from).
func IsStealExecutor(id string) bool { return strings.HasPrefix(id, StealExecutorPrefix) }
