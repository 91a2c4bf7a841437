package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/store/pgtest"
)

// bothSidesTemplate is seed 003's S3.3 as a flow: one request fanned out
// into an open-side part, run by an HTTP agent (deploy/agents/agent.py,
// py.sha256), and a host part, run by a host agent through the instruction
// table (ledger), then a host step that needs both (post), and one merged
// result. docs/hosts.md ("Both sides in one flow") shows the same.
const bothSidesTemplate = `
name: both-sides
input:
  account: {type: string, required: true}
steps:
  - {name: open, type: py.sha256, args: $input.account}
  - {name: host, type: ledger, args: $input.account}
  - {name: post, type: post, args: "${steps.host}:${steps.open}"}
output: {account: $input.account, open: $steps.open, host: $steps.host, posted: $steps.post}
`

// TestFlowBothSides: a real node (HTTP API, host bridge), a real `shoal
// host-agent` process through a SQLite file or a real PostgreSQL, and a
// real HTTP agent in Python run one flow whose steps run on both sides,
// answered with one merged result.
func TestFlowBothSides(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not found")
	}
	t.Run("sqlite", func(t *testing.T) { testFlowBothSides(t, py, filepath.Join(t.TempDir(), "hosts.db")) })
	t.Run("postgres", func(t *testing.T) { testFlowBothSides(t, py, pgtest.Start(t).NewDatabase(t)) })
}

func testFlowBothSides(t *testing.T, py, dsn string) {
	tmp := t.TempDir()
	flows := filepath.Join(tmp, "flows")
	if err := os.MkdirAll(flows, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(flows, "both-sides.yaml"), []byte(bothSidesTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, httpAddr := freeAddr(t), freeAddr(t)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr,
		"--http", httpAddr, "--api-token", "api-tok", "--token", "exec-tok", "--flows", flows,
		"--hosts-db", dsn, "--host-types", "ledger,post", "--log-level", "info")
	runs := filepath.Join(tmp, "host-runs.log")
	startProc(t, filepath.Join(tmp, "agent.log"), "shoal host-agent", "host-agent", "--db", dsn, "--host", "lpar1", "--poll", "100ms",
		"--run", "ledger=echo ledger >> "+runs+"; printf 'balance-of-'; tr a-z A-Z",
		"--run", "post=echo post >> "+runs+"; printf 'posted:'; cat")
	agent := exec.Command(py, "../../deploy/agents/agent.py", "--url", "http://"+httpAddr, "--api-token", "api-tok",
		"--token", "exec-tok", "--id", "py-open", "--types", "py.sha256", "--slots", "2")
	logf, err := os.Create(filepath.Join(tmp, "py-agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent.Stdout, agent.Stderr = logf, logf
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait(); logf.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := runShoal(t, ctx, nil, "flow", "run", "both-sides", "--node", addr, "--token", "exec-tok", "--input", `{"account": "acme"}`, "--wait", "--timeout", "45s")
	if err != nil {
		t.Fatalf("flow run: %v; logs in %s", err, tmp)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " done") {
		t.Fatalf("flow run printed %q; logs in %s", out, tmp)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatalf("flow result %q: %v", lines[1], err)
	}
	sum := sha256.Sum256([]byte("acme"))
	open := hex.EncodeToString(sum[:])
	want := map[string]string{"account": "acme", "open": open, "host": "balance-of-ACME", "posted": "posted:balance-of-ACME:" + open}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("result[%s] = %q, want %q (result %s)", k, got[k], v, lines[1])
		}
	}
	if r := strings.Fields(readFile(runs)); strings.Join(r, ",") != "ledger,post" {
		t.Fatalf("host runs %q, want ledger then post once each", r)
	}
}
