package messages

// The servers view (S3.4, docs/servers.md): every executor's resources
// joined per server, across the cluster, with a bounded history. Ask a
// node's ActorServers with ServersRequest; it answers Servers.

// Executor kinds in the servers view.
const (
	ServerKindWorker = "worker" // a native (SDK) worker
	ServerKindAgent  = "agent"  // an HTTP agent
	ServerKindHost   = "host"   // a host agent, through the node-status table
	ServerKindCloud  = "cloud"  // an executor the cloud actor provisioned
)

// ServerExecutor is one executor's last report, as seen by Node.
type ServerExecutor struct {
	ID    string  `msgpack:"id"`
	Kind  string  `msgpack:"kind"`
	Node  string  `msgpack:"node"` // the member it reports to
	CPU   float64 `msgpack:"cpu"`
	Mem   float64 `msgpack:"mem"`
	IO    float64 `msgpack:"io,omitempty"`
	Disk  float64 `msgpack:"disk,omitempty"`
	Procs int32   `msgpack:"procs,omitempty"`
	IP    string  `msgpack:"ip,omitempty"`
	// Queue is the work it holds: leases (or running instructions for a
	// host agent); Slots its declared concurrency (0: unknown).
	Queue int32  `msgpack:"queue"`
	Slots int32  `msgpack:"slots,omitempty"`
	State string `msgpack:"state,omitempty"`
	At    int64  `msgpack:"at_unix_ms"` // when it last reported
}

// ServerStatus is one server: the executors reporting from one address
// (or one executor whose address is unknown), joined.
type ServerStatus struct {
	// ID is the server's key: "ip:<address>", else "host:<name>" for a
	// host agent without an address, else "exec:<executor id>".
	ID   string `msgpack:"id"`
	Host string `msgpack:"host,omitempty"` // a host agent's name
	IP   string `msgpack:"ip,omitempty"`
	// The server's resources: from its latest report (CPU, Mem, Disk,
	// Procs, IO describe the machine, not one executor); Queue and Slots
	// summed over its executors.
	CPU       float64          `msgpack:"cpu"`
	Mem       float64          `msgpack:"mem"`
	IO        float64          `msgpack:"io,omitempty"`
	Disk      float64          `msgpack:"disk,omitempty"`
	Procs     int32            `msgpack:"procs,omitempty"`
	Queue     int32            `msgpack:"queue"`
	Slots     int32            `msgpack:"slots,omitempty"`
	At        int64            `msgpack:"at_unix_ms"` // its latest report
	Nodes     []string         `msgpack:"nodes"`      // members its executors report to
	Executors []ServerExecutor `msgpack:"executors"`
}

// ServerSample is one point of a server's history. Encoded as an array:
// a history runs to thousands of samples.
type ServerSample struct {
	_msgpack struct{} `msgpack:",as_array"`

	At        int64   `msgpack:"at"` // unix ms, the start of its interval
	CPU       float32 `msgpack:"cpu"`
	Mem       float32 `msgpack:"mem"`
	IO        float32 `msgpack:"io"`
	Disk      float32 `msgpack:"disk"`
	Procs     int32   `msgpack:"procs"`
	Queue     int32   `msgpack:"queue"`
	Executors int32   `msgpack:"executors"`
}

// ServersRequest asks a node's ActorServers for its view. Local asks for
// the servers reporting to that node only (what members ask each other);
// otherwise the answer joins every member's. History, when set, asks for
// that server's history instead (no Servers in the answer).
type ServersRequest struct {
	Local   bool   `msgpack:"local,omitempty"`
	History string `msgpack:"history,omitempty"`
}

// Servers answers ServersRequest.
type Servers struct {
	Node    string         `msgpack:"node"`
	At      int64          `msgpack:"at_unix_ms"` // when the view was gathered
	Servers []ServerStatus `msgpack:"servers,omitempty"`
	// History is the asked server's samples, oldest first, one per
	// ResolutionMillis at most, at most Keep of them.
	History          []ServerSample `msgpack:"history,omitempty"`
	ResolutionMillis int64          `msgpack:"resolution_ms,omitempty"`
	Keep             int32          `msgpack:"keep,omitempty"`
	// Unreachable lists members that did not answer in time.
	Unreachable []string `msgpack:"unreachable,omitempty"`
	Err         *Error   `msgpack:"err,omitempty"`
}
