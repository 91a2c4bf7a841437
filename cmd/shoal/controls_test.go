package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTimeoutAndPauseProcesses drives the controls with real processes: a
// node's per-type timeout fails a worker's long attempts (retried, then
// dead with a timeout error); shoal pause holds a type back across a node
// restart on the same data directory, and shoal resume lets it run.
func TestTimeoutAndPauseProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodeArgs := []string{"node", "--data", filepath.Join(tmp, "data"), "--listen", addr, "--task-timeout", "sleep=300ms", "--log-level", "info"}
	node := startProc(t, filepath.Join(tmp, "node1.log"), "listening on", nodeArgs...)
	worker := startProc(t, filepath.Join(tmp, "worker.log"), "shoal worker", "worker", "--node", addr, "--types", "sleep,echo", "--slots", "4")
	defer worker.stop()

	out, err := runShoal(t, ctx, nil, "submit", "--node", addr, "--type", "sleep", "--payload", "1h", "--max-attempts", "2", "--wait", "--timeout", "30s")
	if err != nil && !strings.Contains(out, "dead") {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dead") || !strings.Contains(out, "error: timeout: ") || !strings.Contains(out, "  2  ") {
		t.Fatalf("a 1h sleep under a 300ms type timeout:\n%s\nwant dead after 2 attempts with a timeout error", out)
	}

	if out, err := runShoal(t, ctx, nil, "pause", "--node", addr, "echo"); err != nil || !strings.Contains(out, "paused types: echo") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if _, err := runShoal(t, ctx, nil, "pause", "--node", addr); err == nil {
		t.Fatal("pause with nothing named succeeded")
	}
	idOut, err := runShoal(t, ctx, nil, "submit", "--node", addr, "--type", "echo", "--payload", "held")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(idOut)
	held := func(when string) {
		t.Helper()
		// shoal wait --timeout on a queued task sometimes fails with
		// "did not answer" (issue 14 item 10, fixed separately): ask again.
		var out string
		for range 5 {
			if out, _ = runShoal(t, ctx, nil, "wait", "--node", addr, "--timeout", "2s", id); strings.Contains(out, "queued") {
				break
			}
		}
		if !strings.Contains(out, "queued") || !strings.Contains(out, "paused: task type \"echo\"") {
			t.Fatalf("%s: wait shows\n%s\nwant queued and paused", when, out)
		}
		st, err := runShoal(t, ctx, nil, "status", "--node", addr)
		if err != nil || !strings.Contains(st, "paused types: echo") {
			t.Fatalf("%s: status %v\n%s", when, err, st)
		}
	}
	held("paused")
	node.stop()
	node = startProc(t, filepath.Join(tmp, "node2.log"), "listening on", nodeArgs...)
	defer node.stop()
	held("after a node restart")
	if out, err := runShoal(t, ctx, nil, "resume", "--node", addr, "echo"); err != nil || !strings.Contains(out, "nothing paused") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	out, err = runShoal(t, ctx, nil, "wait", "--node", addr, "--timeout", "30s", id)
	if err != nil || !strings.Contains(out, "done") || !strings.Contains(out, "held") {
		t.Fatalf("after resume: %v\n%s", err, out)
	}
}

// TestPauseReachesEveryMember: shoal pause through one member of a cluster
// pauses every member, and shoal resume resumes every member.
func TestPauseReachesEveryMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := runShoal(t, ctx, nil, "pause", "--node", c.remotes[0], "echo", "--class", "low"); err != nil || !strings.Contains(out, "paused types: echo") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	status := func(r string) string {
		out, err := runShoal(t, ctx, nil, "status", "--node", r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, r := range c.remotes {
		if st := status(r); !strings.Contains(st, "paused types: echo") || !strings.Contains(st, "paused classes: low") {
			t.Fatalf("member %s after pause:\n%s", r, st)
		}
	}
	if _, err := runShoal(t, ctx, nil, "resume", "--node", c.remotes[1], "echo", "--class", "low"); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.remotes {
		if st := status(r); strings.Contains(st, "paused") {
			t.Fatalf("member %s after resume:\n%s", r, st)
		}
	}
}
