package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsArgs are the TLS flags for the dev certificate who ("node", "client").
func tlsArgs(dir, who string) []string {
	return []string{"--tls-cert", filepath.Join(dir, who+".pem"), "--tls-key", filepath.Join(dir, who+"-key.pem"),
		"--tls-ca", filepath.Join(dir, "ca.pem")}
}

// runFail runs a command that must fail and returns its stderr.
func runFail(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, shoalBinary(t), args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("shoal %v succeeded, want a refusal:\n%s", args, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("shoal %v did not fail fast: %v", args, ctx.Err())
	}
	return string(out)
}

// Three nodes with mutual TLS and a token: tasks submitted at one node are
// forwarded to their owners and run on a worker at another, all over TLS
// with the token. A wrong token, no client certificate, a certificate of
// another CA and a worker with a wrong token are refused at once with
// clear errors, and the worker exits non-zero.
func TestClusterTLSAndToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	certs, other := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, d := range []string{certs, other} {
		if _, err := runShoal(t, ctx, nil, "dev-certs", "--out", d); err != nil {
			t.Fatal(err)
		}
	}
	const token = "s3cret-token"
	client := append(tlsArgs(certs, "client"), "--token", token)
	c := startClusterWith(t, 3, append(tlsArgs(certs, "node"), "--token", token), client)
	journal := c.worker(t, 1, "w", 8)

	const n = 300
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "p%d\n", i)
	}
	out, err := runShoal(t, ctx, strings.NewReader(in.String()), append([]string{"submit", "--node", c.remotes[0],
		"--type", "echo", "--stdin", "--wait", "--timeout", "60s"}, client...)...)
	if err != nil {
		t.Fatal(err)
	}
	states := outcomeLines(out)
	if len(states) != n {
		t.Fatalf("%d outcomes, want %d:\n%s", len(states), n, out)
	}
	for id, s := range states {
		if s != "done" {
			t.Fatalf("task %d is %s, want done", id, s)
		}
	}
	ran := executions(t, journal)
	for i := range n {
		if k := ran[fmt.Sprintf("p%d", i)]; k != 1 {
			t.Fatalf("payload p%d ran %d times, want once", i, k)
		}
	}

	fast := func() (context.Context, func()) { return context.WithTimeout(ctx, 15*time.Second) }
	submit := []string{"submit", "--node", c.remotes[0], "--type", "echo", "--payload", "x"}
	cases := []struct {
		name, want string
		args       []string
	}{
		{"wrong token", "unauthorized", append(tlsArgs(certs, "client"), "--token", "wrong")},
		{"no token", "unauthorized", tlsArgs(certs, "client")},
		{"no TLS", "pass --tls-cert", []string{"--token", token}},
		{"another CA's certificate", "cert",
			append([]string{"--tls-cert", filepath.Join(other, "client.pem"), "--tls-key", filepath.Join(other, "client-key.pem"),
				"--tls-ca", filepath.Join(certs, "ca.pem")}, "--token", token)},
	}
	for _, tc := range cases {
		cctx, ccancel := fast()
		msg := runFail(t, cctx, append(submit, tc.args...)...)
		ccancel()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, msg, tc.want)
		}
	}
	wctx, wcancel := fast()
	defer wcancel()
	msg := runFail(t, wctx, append([]string{"worker", "--node", c.remotes[2], "--types", "echo"}, append(tlsArgs(certs, "client"), "--token", "wrong")...)...)
	if !strings.Contains(msg, "unauthorized") {
		t.Errorf("worker with a wrong token: %q does not say unauthorized", msg)
	}

	// drain and plan talk to a secured node with the same flags as the rest.
	dctx, dcancel := fast()
	defer dcancel()
	if msg := runFail(t, dctx, append([]string{"drain", "nobody", "--node", c.remotes[1]}, client...)...); strings.Contains(msg, "unauthorized") || strings.Contains(msg, "unknown flag") || !strings.Contains(msg, "nobody") {
		t.Errorf("drain of an unknown executor with the cluster's credentials: %q, want the node's answer naming it", msg)
	}
	pctx, pcancel := fast()
	defer pcancel()
	if out, err := runShoal(t, pctx, strings.NewReader(`{"tasks": [{"id": "a", "size": 1, "type": "echo"}]}`),
		append([]string{"plan", "--node", c.remotes[1], "--file", "-"}, client...)...); err != nil {
		t.Errorf("plan against the secured node: %v\n%s", err, out)
	}
}

// A member started with another token than the cluster's is reported in the
// logs as soon as it is seen, instead of only as forwards timing out.
func TestMemberWithAnotherTokenIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	g1 := freeAddr(t)
	node := func(name, gossip, token string, join ...string) string {
		log := filepath.Join(tmp, name+".log")
		args := []string{"node", "--name", name, "--data", filepath.Join(tmp, name), "--listen", freeAddr(t),
			"--gossip", gossip, "--gossip-fast", "--token", token}
		if len(join) > 0 {
			args = append(args, "--join", join[0])
		}
		startProc(t, log, "listening on", args...)
		return log
	}
	log1 := node("n1", g1, "right")
	log2 := node("n2", freeAddr(t), "wrong", g1)
	deadline := time.Now().Add(30 * time.Second)
	for _, l := range []string{log1, log2} {
		for {
			b, _ := os.ReadFile(l)
			if strings.Contains(string(b), "refuses this node's connection") && strings.Contains(string(b), "unauthorized") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not report the member with another token:\n%s", l, b)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
