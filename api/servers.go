package api

import (
	"net"
	"net/http"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// The servers view (S3.4, docs/servers.md): every executor's resources
// joined per server across the cluster, and each server's history.

func (s *Server) serverRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/v1/servers", handler: s.servers},
		{Method: "GET", Path: "/v1/servers/{id}/history", handler: s.serverHistory},
	}
}

// agentCaps marks an HTTP agent's registration with its kind.
func agentCaps(in map[string]string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	out[messages.CapKind] = messages.ServerKindAgent
	return out
}

// withIP shows an agent that reports no address at the one its call
// comes from.
func withIP(l messages.LoadReport, r *http.Request) messages.LoadReport {
	if l.IP == "" {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			l.IP = host
		}
	}
	return l
}

// ServerExecutorOut is one executor's last report in a server.
type ServerExecutorOut struct {
	ID    string  `json:"id"`
	Kind  string  `json:"kind"`
	Node  string  `json:"node"`
	CPU   float64 `json:"cpu"`
	Mem   float64 `json:"mem"`
	IO    float64 `json:"io"`
	Disk  float64 `json:"disk"`
	Procs int32   `json:"procs"`
	IP    string  `json:"ip,omitempty"`
	Queue int32   `json:"queue"`
	Slots int32   `json:"slots"`
	State string  `json:"state,omitempty"`
	At    string  `json:"at"`
	AtMS  int64   `json:"at_unix_ms"`
}

// ServerOut is one server of GET /v1/servers.
type ServerOut struct {
	ID        string              `json:"id"`
	Host      string              `json:"host,omitempty"`
	IP        string              `json:"ip,omitempty"`
	CPU       float64             `json:"cpu"`
	Mem       float64             `json:"mem"`
	IO        float64             `json:"io"`
	Disk      float64             `json:"disk"`
	Procs     int32               `json:"procs"`
	Queue     int32               `json:"queue"`
	Slots     int32               `json:"slots"`
	At        string              `json:"at"`
	AtMS      int64               `json:"at_unix_ms"`
	Nodes     []string            `json:"nodes"`
	Executors []ServerExecutorOut `json:"executors"`
}

// ServersOut answers GET /v1/servers.
type ServersOut struct {
	Node        string      `json:"node"`
	AtMS        int64       `json:"at_unix_ms"`
	Servers     []ServerOut `json:"servers"`
	Unreachable []string    `json:"unreachable,omitempty"`
}

// SampleOut is one history point.
type SampleOut struct {
	AtMS      int64   `json:"at_unix_ms"`
	CPU       float32 `json:"cpu"`
	Mem       float32 `json:"mem"`
	IO        float32 `json:"io"`
	Disk      float32 `json:"disk"`
	Procs     int32   `json:"procs"`
	Queue     int32   `json:"queue"`
	Executors int32   `json:"executors"`
}

// HistoryOut answers GET /v1/servers/{id}/history.
type HistoryOut struct {
	ID           string      `json:"id"`
	Node         string      `json:"node"`
	ResolutionMS int64       `json:"resolution_ms"`
	Keep         int32       `json:"keep"`
	Samples      []SampleOut `json:"samples"`
}

func stamp(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// ServersJSON is the JSON shape of a servers view (the API's and
// `shoal status --json`'s).
func ServersJSON(v *messages.Servers) ServersOut {
	out := ServersOut{Node: v.Node, AtMS: v.At, Servers: []ServerOut{}, Unreachable: v.Unreachable}
	for _, s := range v.Servers {
		so := ServerOut{ID: s.ID, Host: s.Host, IP: s.IP, CPU: s.CPU, Mem: s.Mem, IO: s.IO, Disk: s.Disk, Procs: s.Procs,
			Queue: s.Queue, Slots: s.Slots, At: stamp(s.At), AtMS: s.At, Nodes: s.Nodes, Executors: []ServerExecutorOut{}}
		if so.Nodes == nil {
			so.Nodes = []string{}
		}
		for _, e := range s.Executors {
			so.Executors = append(so.Executors, ServerExecutorOut{ID: e.ID, Kind: e.Kind, Node: e.Node, CPU: e.CPU, Mem: e.Mem, IO: e.IO,
				Disk: e.Disk, Procs: e.Procs, IP: e.IP, Queue: e.Queue, Slots: e.Slots, State: e.State, At: stamp(e.At), AtMS: e.At})
		}
		out.Servers = append(out.Servers, so)
	}
	return out
}

// GET /v1/servers: every server of the cluster with its executors.
func (s *Server) servers(w http.ResponseWriter, r *http.Request) {
	v, err := s.client.Servers(r.Context())
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, ServersJSON(v))
}

// GET /v1/servers/{id}/history: one server's samples, oldest first.
func (s *Server) serverHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := s.client.ServerHistory(r.Context(), id)
	if err != nil {
		writeError(w, messages.AsError(err))
		return
	}
	out := HistoryOut{ID: id, Node: v.Node, ResolutionMS: v.ResolutionMillis, Keep: v.Keep, Samples: make([]SampleOut, len(v.History))}
	for i, h := range v.History {
		out.Samples[i] = SampleOut{AtMS: h.At, CPU: h.CPU, Mem: h.Mem, IO: h.IO, Disk: h.Disk, Procs: h.Procs, Queue: h.Queue, Executors: h.Executors}
	}
	writeJSON(w, http.StatusOK, out)
}
