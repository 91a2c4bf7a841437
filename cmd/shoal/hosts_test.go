package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/store/pgtest"
)

// TestHostAgentProcesses runs a node with its host bridge and host-agent
// processes over a real SQLite file and a real PostgreSQL: tasks run end to
// end through the table; an agent killed with SIGKILL mid-instruction has
// its task retried and done once by another; agents racing for the same
// instructions run each once.
func TestHostAgentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Run("sqlite", func(t *testing.T) { testHostAgentProcs(t, filepath.Join(t.TempDir(), "hosts.db")) })
	t.Run("postgres", func(t *testing.T) { testHostAgentProcs(t, pgtest.Start(t).NewDatabase(t)) })
}

func testHostAgentProcs(t *testing.T, dsn string) {
	tmp := t.TempDir()
	addr := freeAddr(t)
	t.Logf("node %s, logs in %s", addr, tmp)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr,
		"--hosts-db", dsn, "--host-types", "job,upper,count", "--log-level", "info")
	runs := filepath.Join(tmp, "runs.log")
	agentArgs := func(id, job string) []string {
		return []string{"host-agent", "--db", dsn, "--host", "lpar1", "--id", id, "--lease", "1s", "--poll", "50ms", "--status-every", "200ms", "--log-level", "info",
			"--run", "job=" + job, "--run", "upper=tr a-z A-Z", "--run", "count=echo $SHOAL_TASK_ID >> " + filepath.Join(tmp, "count.log") + "; cat"}
	}
	a := startProc(t, filepath.Join(tmp, "agent-a.log"), "shoal host-agent", agentArgs("lpar1/a", "echo a $SHOAL_ATTEMPT >> "+runs+"; sleep 60; echo never")...)

	// The client is the CLI, not sdk.Dial: a second protoactor remote in
	// this test process would race in grpc's global logger (grpclog).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	submit := func(typ string, payloads ...string) []string {
		t.Helper()
		out, err := runShoal(t, ctx, strings.NewReader(strings.Join(payloads, "\n")+"\n"), "submit", "--node", addr, "--type", typ, "--stdin")
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		return strings.Fields(out)
	}
	// wait returns "state attempts output" per id.
	wait := func(ids ...string) []string {
		t.Helper()
		out, err := runShoal(t, ctx, strings.NewReader(strings.Join(ids, "\n")+"\n"), "wait", "--node", addr, "--timeout", "45s")
		if err != nil {
			t.Fatalf("wait: %v; see %s", err, tmp)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			got = append(got, f[1]+" "+f[2]+" "+strings.Join(f[4:], " "))
		}
		return got
	}

	// End to end through a real agent process.
	if got := wait(submit("upper", "hello")...); len(got) != 1 || got[0] != "done 1 HELLO" {
		t.Fatalf("upper: %q", got)
	}

	// SIGKILL mid-instruction.
	jid := submit("job", "the-payload")
	for !strings.Contains(readFile(runs), "a 1") {
		if ctx.Err() != nil {
			t.Fatalf("agent a never started the job; see %s", tmp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	startProc(t, filepath.Join(tmp, "agent-b.log"), "shoal host-agent", agentArgs("lpar1/b", "echo b $SHOAL_ATTEMPT >> "+runs+"; cat")...)
	if got := wait(jid...); len(got) != 1 || got[0] != "done 2 the-payload" {
		t.Fatalf("job after the kill: %q (want done by attempt 2); see %s", got, tmp)
	}
	if got := strings.Fields(strings.ReplaceAll(readFile(runs), "\n", ",")); !slices.Equal(got, []string{"a", "1,b", "2,"}) {
		t.Fatalf("runs of the job: %q, want attempt 1 on a (killed), attempt 2 on b, once each", readFile(runs))
	}

	// Two agents racing for the same instructions: each runs once.
	startProc(t, filepath.Join(tmp, "agent-c.log"), "shoal host-agent", agentArgs("lpar1/c", "cat")...)
	var payloads []string
	for i := range 30 {
		payloads = append(payloads, fmt.Sprintf("c%d", i))
	}
	ids := submit("count", payloads...)
	for i, got := range wait(ids...) {
		if got != "done 1 "+payloads[i] {
			t.Fatalf("count task %s: %q", ids[i], got)
		}
	}
	seen := map[string]int{}
	for _, line := range strings.Fields(readFile(filepath.Join(tmp, "count.log"))) {
		seen[line]++
	}
	for _, id := range ids {
		if n := seen[id]; n != 1 {
			t.Fatalf("task %s ran %d times across the racing agents", id, n)
		}
	}

	// Both live agents reported this host; the table shows its resources.
	tbl, err := table.OpenDSN(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	st, err := tbl.Statuses(ctx)
	if err != nil || len(st) != 1 || st[0].Host != "lpar1" || st[0].Procs == 0 || st[0].Mem <= 0 {
		t.Fatalf("host status: %+v, %v", st, err)
	}
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

// TestHostAgentBadDSN: a bad DSN or an unreachable database is a clear
// error at once, not a hang.
func TestHostAgentBadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ dsn, want string }{
		{"mysql://u@h/db", "bad DSN"},
		{filepath.Join(t.TempDir(), "missing", "hosts.db"), "database unavailable"},
		{fmt.Sprintf("postgres://u@%s/db?sslmode=disable", freeAddr(t)), "database unavailable"},
	} {
		out, err := runShoalCombined(t, ctx, "host-agent", "--db", c.dsn, "--host", "h", "--types", "echo", "--connect-timeout", "2s")
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("host-agent --db %s: %v, %q; want an error saying %q", c.dsn, err, out, c.want)
		}
	}
	if out, err := runShoalCombined(t, ctx, "node", "--data", t.TempDir(), "--listen", freeAddr(t), "--hosts-db", "mysql://x", "--host-types", "a"); err == nil || !strings.Contains(out, "bad DSN") {
		t.Errorf("node --hosts-db mysql://x: %v, %q; want a bad DSN error", err, out)
	}
}

// runShoalCombined runs the binary to its end and returns stdout and stderr.
func runShoalCombined(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(ctx, shoalBinary(t), args...).CombinedOutput()
	return string(out), err
}
