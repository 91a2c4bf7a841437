// Package servers is the monitoring view's pure part (S3.4,
// docs/servers.md): it joins every executor's report into one view per
// server and keeps a bounded, fixed-resolution history for each. No clock,
// no I/O: the node's servers actor (node/servers.go) gathers the reports
// and passes the time in.
package servers

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Config bounds the history.
type Config struct {
	// Resolution is the width of one history sample (the last report in
	// an interval wins) and how often the node gathers. Default 10 s.
	Resolution time.Duration
	// Keep is how many samples each server keeps. Default 2,160 (6 h at
	// 10 s).
	Keep int
	// MaxServers bounds the servers with a history; beyond it the one
	// heard from least recently is forgotten. Default 4,096.
	MaxServers int
	// Forget drops a server not seen for this long. Default Resolution ×
	// Keep (its history would be empty of recent points).
	Forget time.Duration
}

// SampleBytes is the memory one history sample takes (a ServerSample:
// 8-byte time, four float32, three int32, padded to 8).
const SampleBytes = 40

// DefaultConfig is 1 sample / 10 s for 6 h: a server's ring is allocated
// whole when it is first seen, 2,160 samples × 40 bytes = 86,400 bytes
// (≈ 84 KiB); 100 servers ≈ 8.2 MiB, the 1,024-server bound ≈ 84 MiB.
func DefaultConfig() Config {
	return Config{Resolution: 10 * time.Second, Keep: 2160, MaxServers: 1024}
}

// WithDefaults fills the zero fields with DefaultConfig's.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Resolution == 0 {
		c.Resolution = d.Resolution
	}
	if c.Keep == 0 {
		c.Keep = d.Keep
	}
	if c.MaxServers == 0 {
		c.MaxServers = d.MaxServers
	}
	if c.Forget == 0 {
		c.Forget = c.Resolution * time.Duration(c.Keep)
	}
	return c
}

// Validate names the first bad field (zero fields mean their defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Resolution <= 0:
		return fmt.Errorf("servers: Resolution must be > 0, got %v", c.Resolution)
	case c.Keep <= 0:
		return fmt.Errorf("servers: Keep must be > 0, got %d", c.Keep)
	case c.MaxServers <= 0:
		return fmt.Errorf("servers: MaxServers must be > 0, got %d", c.MaxServers)
	case c.Forget <= 0:
		return fmt.Errorf("servers: Forget must be > 0, got %v", c.Forget)
	}
	return nil
}

// MemoryBytes is the most the history holds (samples only).
func (c Config) MemoryBytes() int64 { return int64(c.Keep) * int64(c.MaxServers) * SampleBytes }

// Key is the server an executor reports from: its address, else a host
// agent's name, else the executor itself.
func Key(e messages.ServerExecutor, host string) string {
	switch {
	case e.IP != "":
		return "ip:" + e.IP
	case host != "":
		return "host:" + host
	}
	return "exec:" + e.ID
}

// Report is one executor's report with the host name a host agent gave.
type Report struct {
	messages.ServerExecutor
	Host string
}

// Join groups reports into servers, sorted by id; a server's executors
// are sorted by id, and an executor reported twice (two members seeing
// one shared table) is kept once, its latest report. A server's machine
// figures are its latest report's; Queue and Slots are summed.
func Join(reports []Report) []messages.ServerStatus {
	byKey := map[string]*messages.ServerStatus{}
	hosts := map[string]string{}
	seen := map[string]int{} // server key + executor id → index
	for _, r := range reports {
		k := Key(r.ServerExecutor, r.Host)
		s := byKey[k]
		if s == nil {
			s = &messages.ServerStatus{ID: k, IP: r.IP}
			byKey[k] = s
		}
		if r.Host != "" && hosts[k] == "" {
			hosts[k] = r.Host
		}
		ek := k + "\x00" + r.Kind + "\x00" + r.ID
		if i, ok := seen[ek]; ok {
			if r.At > s.Executors[i].At {
				s.Executors[i] = r.ServerExecutor
			}
			continue
		}
		seen[ek] = len(s.Executors)
		s.Executors = append(s.Executors, r.ServerExecutor)
	}
	out := make([]messages.ServerStatus, 0, len(byKey))
	for k, s := range byKey {
		s.Host = hosts[k]
		slices.SortFunc(s.Executors, func(a, b messages.ServerExecutor) int {
			return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Kind, b.Kind))
		})
		var latest *messages.ServerExecutor
		for i := range s.Executors {
			e := &s.Executors[i]
			s.Queue += e.Queue
			s.Slots += e.Slots
			if !slices.Contains(s.Nodes, e.Node) && e.Node != "" {
				s.Nodes = append(s.Nodes, e.Node)
			}
			// The machine's figures: the latest report that has them (a
			// bridge-less executor with no sampling reports zeros).
			if e.CPU+e.Mem+e.Disk > 0 || e.Procs > 0 {
				if latest == nil || e.At > latest.At {
					latest = e
				}
			}
			s.At = max(s.At, e.At)
		}
		if latest != nil {
			s.CPU, s.Mem, s.IO, s.Disk, s.Procs = latest.CPU, latest.Mem, latest.IO, latest.Disk, latest.Procs
		}
		slices.Sort(s.Nodes)
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b messages.ServerStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ring is one server's history: a fixed-size circular buffer.
type ring struct {
	buf      []messages.ServerSample
	start, n int
	seen     time.Time // last recorded
}

func (r *ring) last() *messages.ServerSample {
	if r.n == 0 {
		return nil
	}
	return &r.buf[(r.start+r.n-1)%len(r.buf)]
}

func (r *ring) push(s messages.ServerSample) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

// History keeps each server's samples. Not safe for concurrent use: one
// actor owns it.
type History struct {
	cfg     Config
	servers map[string]*ring
}

// NewHistory returns an empty history (cfg with defaults filled in; a
// valid cfg: see Validate).
func NewHistory(cfg Config) *History {
	return &History{cfg: cfg.WithDefaults(), servers: map[string]*ring{}}
}

// Config is the history's configuration, defaults filled in.
func (h *History) Config() Config { return h.cfg }

// Record adds the view gathered at now: one sample per server in the
// interval now falls in (a later view in the same interval replaces it),
// then forgets servers not seen for Forget and, past MaxServers, the least
// recently seen.
func (h *History) Record(now time.Time, view []messages.ServerStatus) {
	at := now.Truncate(h.cfg.Resolution).UnixMilli()
	for _, s := range view {
		r := h.servers[s.ID]
		if r == nil {
			r = &ring{buf: make([]messages.ServerSample, h.cfg.Keep)}
			h.servers[s.ID] = r
		}
		r.seen = now
		smp := messages.ServerSample{At: at, CPU: float32(s.CPU), Mem: float32(s.Mem), IO: float32(s.IO), Disk: float32(s.Disk),
			Procs: s.Procs, Queue: s.Queue, Executors: int32(len(s.Executors))}
		if l := r.last(); l != nil && l.At == at {
			*l = smp
		} else {
			r.push(smp)
		}
	}
	for id, r := range h.servers {
		if now.Sub(r.seen) > h.cfg.Forget {
			delete(h.servers, id)
		}
	}
	for len(h.servers) > h.cfg.MaxServers {
		var oldest string
		for id, r := range h.servers {
			if oldest == "" || r.seen.Before(h.servers[oldest].seen) || r.seen.Equal(h.servers[oldest].seen) && id < oldest {
				oldest = id
			}
		}
		delete(h.servers, oldest)
	}
}

// Samples returns a server's history, oldest first (false: unknown).
func (h *History) Samples(id string) ([]messages.ServerSample, bool) {
	r := h.servers[id]
	if r == nil {
		return nil, false
	}
	out := make([]messages.ServerSample, r.n)
	for i := range r.n {
		out[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	return out, true
}

// Len is how many servers have a history.
func (h *History) Len() int { return len(h.servers) }
