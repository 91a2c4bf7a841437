package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shoal plan --submit: the seed's example on three real workers; every task
// runs on the executor the plan pinned it to.
func TestPlanSubmitPinned(t *testing.T) {
	tmp := t.TempDir()
	addr := freeAddr(t)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr)
	for _, id := range []string{"s1", "s2", "s3"} {
		startProc(t, filepath.Join(tmp, id+".log"), "shoal worker", "worker", "--node", addr, "--id", id, "--slots", "1",
			"--journal", filepath.Join(tmp, id+".journal"))
	}
	batch := `{"tasks": [{"id": "a", "size": 20, "payload": "2ms"}, {"id": "b", "size": 40, "payload": "4ms"},
	  {"id": "c", "size": 40, "payload": "4.0ms"}, {"id": "d", "size": 60, "payload": "6ms"}],
	  "executors": [{"id": "s1", "backlog": 10}, {"id": "s2", "backlog": 40}, {"id": "s3", "backlog": 60}]}`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runShoal(t, ctx, strings.NewReader(batch), "plan", "--node", addr, "--submit", "--type", "sleep", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Assignments []struct{ Task, Executor string }
		Makespan    float64 `json:"makespan"`
		IDs         []uint64
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Makespan != 100 || len(p.IDs) != 4 {
		t.Fatalf("plan: %v %+v\n%s", err, p, out)
	}
	var ids []string
	for _, id := range p.IDs {
		ids = append(ids, strconv.FormatUint(id, 10))
	}
	out, err = runShoal(t, ctx, nil, append([]string{"wait", "--node", addr}, ids...)...)
	if err != nil || strings.Count(out, " done ") != 4 {
		t.Fatalf("wait: %v\n%s", err, out)
	}
	// Each task ran where the plan put it (the journals name the tasks).
	for i, a := range p.Assignments {
		b, _ := os.ReadFile(filepath.Join(tmp, a.Executor+".journal"))
		if !strings.Contains("\n"+string(b), "\n"+ids[i]+"\t") {
			t.Errorf("task %s (%s) planned on %s did not run there; journal:\n%s", ids[i], a.Task, a.Executor, b)
		}
	}
}
