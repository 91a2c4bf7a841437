package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/hosts/agent"
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/sdk"
	"github.com/shoalrt/shoal/servers"
)

// A real node with a native worker, an HTTP agent and a host agent
// (SQLite node-status table): GET /v1/servers shows all three with their
// resources and timestamps, and each server's history grows one sample per
// interval up to its bound.
func TestServersView(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "hosts.db")
	const res, keep = 200 * time.Millisecond, 4
	e := start(t, func(c *node.Config) {
		c.Name = "n1"
		c.Hosts = node.HostsConfig{DSN: dsn, Types: []string{"report"}, Poll: 20 * time.Millisecond}
		c.Servers = servers.Config{Resolution: res, Keep: keep}
	}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// A native worker sampling its load (CPU, memory, disk, processes, IP).
	w := sdk.NewWorker(e.conn, sdk.WorkerConfig{ID: "w1", Slots: 2})
	w.Handle("echo", func(_ context.Context, tk messages.Task) ([]byte, error) { return tk.Payload, nil })
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go func() { _ = w.Run(wctx) }()

	// An HTTP agent reporting its resources and an address.
	if st := e.do("POST", "/v1/agents", map[string]any{"id": "a1", "types": []string{"py"}, "slots": 3}, nil); st != 200 {
		t.Fatalf("register: %d", st)
	}
	load := map[string]any{"cpu": 0.25, "mem": 0.5, "io": 0.1, "disk": 0.6, "procs": 77, "ip": "10.9.8.7"}
	if st := e.do("POST", "/v1/agents/a1/heartbeat", map[string]any{"load": load}, nil); st != 200 {
		t.Fatalf("heartbeat: %d", st)
	}

	// A host agent writing its status into the table.
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	acfg := agent.DefaultConfig("lpar1")
	acfg.Poll, acfg.StatusEvery = 20*time.Millisecond, 100*time.Millisecond
	acfg.Handlers["report"] = func(context.Context, table.Instruction) ([]byte, error) { return []byte("ok"), nil }
	ag, err := agent.New(tbl, acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	actx, astop := context.WithCancel(ctx)
	adone := make(chan struct{})
	go func() { defer close(adone); _ = ag.Run(actx) }()
	defer func() { astop(); <-adone; _ = tbl.Close() }()

	var out api.ServersOut
	kinds := map[string]api.ServerExecutorOut{}
	servers := map[string]api.ServerOut{}
	for {
		out = api.ServersOut{}
		if st := e.do("GET", "/v1/servers", nil, &out); st != 200 {
			t.Fatalf("GET /v1/servers: %d", st)
		}
		clear(kinds)
		clear(servers)
		for _, s := range out.Servers {
			servers[s.ID] = s
			for _, x := range s.Executors {
				kinds[x.Kind+"/"+x.ID] = x
			}
		}
		wk, hk := kinds["worker/w1"], kinds["host/lpar1"]
		if _, ok := kinds["agent/a1"]; ok && wk.IP != "" && hk.AtMS > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("servers never showed the three executors: %+v", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out.Node != "n1" || out.AtMS == 0 {
		t.Fatalf("view %+v", out)
	}
	now := time.Now().UnixMilli()
	for k, x := range kinds {
		if x.AtMS <= 0 || x.AtMS > now || x.At == "" || x.Node != "n1" {
			t.Errorf("%s: timestamp or node missing: %+v", k, x)
		}
	}
	a := kinds["agent/a1"]
	if a.CPU != 0.25 || a.Mem != 0.5 || a.Disk != 0.6 || a.Procs != 77 || a.IP != "10.9.8.7" || a.Slots != 3 {
		t.Errorf("agent %+v", a)
	}
	if s := servers["ip:10.9.8.7"]; s.Procs != 77 || len(s.Executors) != 1 {
		t.Errorf("agent's server %+v", s)
	}
	wk := kinds["worker/w1"]
	if wk.Procs <= 0 || wk.Disk <= 0 || wk.Mem <= 0 || wk.Slots != 2 {
		t.Errorf("worker resources missing: %+v", wk)
	}
	h := kinds["host/lpar1"]
	if h.Procs <= 0 || h.Mem <= 0 || h.IP == "" {
		t.Errorf("host agent resources missing: %+v", h)
	}
	// The worker and the host agent run on this machine: one server.
	same := servers["ip:"+wk.IP]
	if wk.IP == h.IP && (same.Host != "lpar1" || len(same.Executors) != 2) {
		t.Errorf("worker and host agent on one address not joined: %+v", same)
	}
	if _, ok := kinds["worker/"+node.BridgeID("n1")]; ok {
		t.Errorf("the host bridge is listed as a server: %+v", out)
	}

	// History: one sample per interval, at most keep.
	id := "ip:10.9.8.7"
	var hist api.HistoryOut
	deadline := time.Now().Add(20 * time.Second)
	for {
		hist = api.HistoryOut{}
		if st := e.do("GET", "/v1/servers/"+id+"/history", nil, &hist); st != 200 {
			t.Fatalf("history: %d", st)
		}
		if len(hist.Samples) > keep {
			t.Fatalf("history past its bound %d: %d samples", keep, len(hist.Samples))
		}
		if len(hist.Samples) == keep {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history never reached %d samples: %+v", keep, hist)
		}
		time.Sleep(res / 2)
	}
	time.Sleep(3 * res) // it stays bounded
	hist = api.HistoryOut{}
	e.do("GET", "/v1/servers/"+id+"/history", nil, &hist)
	if len(hist.Samples) != keep || hist.ResolutionMS != res.Milliseconds() || hist.Keep != keep {
		t.Fatalf("history %+v", hist)
	}
	for i, s := range hist.Samples {
		if s.AtMS%res.Milliseconds() != 0 || i > 0 && s.AtMS-hist.Samples[i-1].AtMS < res.Milliseconds() {
			t.Fatalf("samples not at the resolution: %+v", hist.Samples)
		}
		if s.Procs != 77 || s.Executors != 1 {
			t.Fatalf("sample %+v", s)
		}
	}
	var eb struct {
		Error struct{ Code string }
	}
	if st := e.do("GET", "/v1/servers/nope/history", nil, &eb); st != 404 || eb.Error.Code != messages.CodeNotFound.String() {
		t.Fatalf("unknown server: %d %+v", st, eb)
	}
	_ = fmt.Sprint()
}
