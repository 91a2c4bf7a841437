package servers

import (
	"testing"
	"time"
	"unsafe"

	"github.com/shoalrt/shoal/messages"
)

func TestSampleBytes(t *testing.T) {
	if got := unsafe.Sizeof(messages.ServerSample{}); got != SampleBytes {
		t.Fatalf("ServerSample is %d bytes, SampleBytes says %d (docs/servers.md quotes it)", got, SampleBytes)
	}
	if got := DefaultConfig().MemoryBytes(); got != 2160*1024*40 {
		t.Fatalf("default memory bound %d", got)
	}
}

func TestJoin(t *testing.T) {
	rs := []Report{
		{ServerExecutor: messages.ServerExecutor{ID: "w1", Kind: messages.ServerKindWorker, Node: "n1", CPU: 0.2, Mem: 0.3, Disk: 0.4, Procs: 100, IP: "10.0.0.1", Queue: 2, Slots: 4, At: 1000}},
		{ServerExecutor: messages.ServerExecutor{ID: "lpar1", Kind: messages.ServerKindHost, Node: "n2", CPU: 0.5, Mem: 0.6, Disk: 0.7, Procs: 120, IP: "10.0.0.1", Queue: 1, At: 2000}, Host: "lpar1"},
		{ServerExecutor: messages.ServerExecutor{ID: "a1", Kind: messages.ServerKindAgent, Node: "n1", Queue: 5, Slots: 8, At: 3000}},
		{ServerExecutor: messages.ServerExecutor{ID: "h2", Kind: messages.ServerKindHost, Node: "n1", CPU: 0.1, At: 500}, Host: "h2"},
		// the same host row seen by a second member (a shared table): once, the latest
		{ServerExecutor: messages.ServerExecutor{ID: "h2", Kind: messages.ServerKindHost, Node: "n2", CPU: 0.9, At: 700}, Host: "h2"},
	}
	got := Join(rs)
	if len(got) != 3 {
		t.Fatalf("servers %+v", got)
	}
	a, h, ip := got[0], got[1], got[2]
	if a.ID != "exec:a1" || a.Queue != 5 || a.Slots != 8 || a.At != 3000 || len(a.Executors) != 1 {
		t.Fatalf("agent server %+v", a)
	}
	if h.ID != "host:h2" || h.Host != "h2" || len(h.Executors) != 1 || h.CPU != 0.9 || h.Executors[0].Node != "n2" {
		t.Fatalf("host server %+v", h)
	}
	if ip.ID != "ip:10.0.0.1" || ip.Host != "lpar1" || len(ip.Executors) != 2 || ip.Queue != 3 || ip.Slots != 4 ||
		ip.CPU != 0.5 || ip.Procs != 120 || ip.At != 2000 || len(ip.Nodes) != 2 {
		t.Fatalf("joined server %+v", ip)
	}
}

func TestHistoryResolutionAndBound(t *testing.T) {
	h := NewHistory(Config{Resolution: time.Second, Keep: 5, MaxServers: 2})
	t0 := time.UnixMilli(1_700_000_000_000)
	view := func(q int32, ids ...string) []messages.ServerStatus {
		var out []messages.ServerStatus
		for _, id := range ids {
			out = append(out, messages.ServerStatus{ID: id, Queue: q, CPU: 0.5})
		}
		return out
	}
	// Three views within one second: one sample, the last.
	for i := range 3 {
		h.Record(t0.Add(time.Duration(i)*300*time.Millisecond), view(int32(i), "a"))
	}
	s, ok := h.Samples("a")
	if !ok || len(s) != 1 || s[0].Queue != 2 || s[0].At != t0.UnixMilli() {
		t.Fatalf("one interval: %+v", s)
	}
	// Ten more seconds: bounded at Keep, oldest first, one per second.
	for i := 1; i <= 10; i++ {
		h.Record(t0.Add(time.Duration(i)*time.Second), view(int32(10+i), "a"))
	}
	s, _ = h.Samples("a")
	if len(s) != 5 || s[0].Queue != 16 || s[4].Queue != 20 {
		t.Fatalf("bounded: %+v", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i].At-s[i-1].At != 1000 {
			t.Fatalf("resolution: %+v", s)
		}
	}
	// MaxServers: a third server pushes out the least recently seen.
	h.Record(t0.Add(11*time.Second), view(1, "b"))
	h.Record(t0.Add(12*time.Second), view(1, "c"))
	if _, ok := h.Samples("a"); ok || h.Len() != 2 {
		t.Fatalf("a kept past MaxServers: %d", h.Len())
	}
	// Forget (default Resolution × Keep = 5 s): b and c go when unseen.
	h.Record(t0.Add(30*time.Second), view(1, "d"))
	if h.Len() != 1 {
		t.Fatalf("forgotten servers kept: %d", h.Len())
	}
}
