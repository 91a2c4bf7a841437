package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Process tests of the server supervisor (docs/supervision.md): real nodes
// launching real `shoal worker` processes.

var listenRE = regexp.MustCompile(`listening on (\S+)`)

// startSupervisedNode starts a node with extra flags and returns it and its
// remote address.
func startSupervisedNode(t *testing.T, tmp string, extra ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"node", "--data", filepath.Join(tmp, "data"), "--listen", addr, "--log-level", "info"}, extra...)
	return startProc(t, filepath.Join(tmp, "node.log"), "listening on", args...), addr
}

func nodeStatus(t *testing.T, ctx context.Context, addr string) *messages.Status {
	t.Helper()
	out, err := runShoal(t, ctx, nil, "status", "--node", addr, "--json")
	if err != nil {
		return nil
	}
	var st messages.Status
	if unmarshalStatus([]byte(out), &st) != nil {
		return nil
	}
	return &st
}

// waitStatus polls status until ok accepts it (or ctx ends).
func waitStatus(t *testing.T, ctx context.Context, addr, what string, ok func(*messages.Status) bool) *messages.Status {
	t.Helper()
	for {
		if st := nodeStatus(t, ctx, addr); st != nil && ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			st := nodeStatus(t, context.Background(), addr)
			t.Fatalf("gave up waiting for %s; last status %+v", what, st)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func executorNamed(st *messages.Status, id string) *messages.ExecutorStatus {
	for i := range st.Executors {
		if st.Executors[i].ID == id {
			return &st.Executors[i]
		}
	}
	return nil
}

// childPID finds the node's child process running `--id id`.
func childPID(t *testing.T, nodePID int, id string) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nodePID))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), "--id "+id+" ") {
				return pid
			}
		}
	}
	t.Fatalf("no child process of %d runs executor %s", nodePID, id)
	return 0
}

// TestWorkerCrashingOnStartIsRestartedThenAlerted: a launched worker that
// exits at once is restarted --max-restarts times with backoff, then an
// alert reaches the webhook and the exec hook, status shows it failed with
// the alert, and the tasks it would have run finish on another worker.
func TestWorkerCrashingOnStartIsRestartedThenAlerted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	var (
		mu    sync.Mutex
		hooks []messages.Alert
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a messages.Alert
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &a) != nil {
			t.Errorf("webhook got %s %q %q", r.Method, r.Header.Get("Content-Type"), b)
		}
		mu.Lock()
		hooks = append(hooks, a)
		mu.Unlock()
	}))
	defer hook.Close()
	execOut := filepath.Join(tmp, "alert.json")
	node, addr := startSupervisedNode(t, tmp, "--name", "n1", "--executors", "1", "--executor-args", "--fail-on-start",
		"--max-restarts", "3", "--restart-base", "50ms", "--restart-max", "400ms", "--health-interval", "50ms",
		"--alert-webhook", hook.URL, "--alert-exec", "cat > "+execOut, "--sleep-policy", "off")
	defer node.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := runShoal(t, ctx, nil, "submit", "--node", addr, "--type", "echo", "--payload", "x", "--count", "1")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)

	st := waitStatus(t, ctx, addr, "n1-exec-1 failed", func(st *messages.Status) bool {
		e := executorNamed(st, "n1-exec-1")
		return e != nil && e.State == messages.ExecFailed
	})
	e := executorNamed(st, "n1-exec-1")
	if e.Restarts != 3 || !e.Launched || !strings.Contains(e.Unhealthy, "exit status 3") {
		t.Fatalf("failed executor %+v, want launched, 3 restarts, exit status 3", e)
	}
	if len(st.Alerts) != 1 || st.Alerts[0].Kind != "restart_limit" || st.Alerts[0].Executor != "n1-exec-1" || st.Alerts[0].Failures != 4 {
		t.Fatalf("status alerts %+v, want one restart_limit after 4 failures", st.Alerts)
	}
	if st.Counters["restarts"] != 3 || st.Counters["alerts"] != 1 {
		t.Fatalf("counters restarts %d alerts %d, want 3 and 1", st.Counters["restarts"], st.Counters["alerts"])
	}
	// Both sinks got the alert (they run beside the status update).
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(hooks)
		mu.Unlock()
		b, _ := os.ReadFile(execOut)
		var a messages.Alert
		if n == 1 && json.Unmarshal(b, &a) == nil && a.Executor == "n1-exec-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sinks: webhook got %d alerts, exec hook wrote %q", n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if hooks[0].Kind != "restart_limit" || hooks[0].Node != "n1" {
		t.Fatalf("webhook alert %+v", hooks[0])
	}
	mu.Unlock()
	// Text status shows the state and the alert.
	text, err := runShoal(t, ctx, nil, "status", "--node", addr)
	if err != nil || !strings.Contains(text, "failed (launched, 3 restarts)") || !strings.Contains(text, "restart_limit") {
		t.Fatalf("text status:\n%s", text)
	}

	// The task finishes on another worker.
	startProc(t, filepath.Join(tmp, "worker.log"), "shoal worker", "worker", "--node", addr, "--types", "echo", "--id", "healthy")
	out, err = runShoal(t, ctx, nil, "wait", "--node", addr, id)
	if err != nil || outcomeLines(out)[mustID(t, id)] != "done" {
		t.Fatalf("task %s after the alert: %q %v", id, out, err)
	}
}

func mustID(t *testing.T, s string) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("task id %q: %v", s, err)
	}
	return id
}

// TestKilledWorkerTasksFinishElsewhereAtOnce: a launched worker SIGKILLed
// while it runs tasks has them requeued the moment the node sees it exit.
// The lease TTL is 5 minutes and its restart waits a minute, so only the
// eviction explains the tasks finishing on the other worker within the
// test's bound.
func TestKilledWorkerTasksFinishElsewhereAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	node, addr := startSupervisedNode(t, tmp, "--name", "n1", "--executors", "2", "--lease-ttl", "5m",
		"--executor-args", "--types sleep --slots 2", "--restart-base", "1m", "--restart-max", "1m", "--health-interval", "100ms", "--sleep-policy", "off")
	defer node.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitStatus(t, ctx, addr, "two workers", func(st *messages.Status) bool { return len(st.Executors) == 2 })

	in := "3000ms\n3001ms\n3002ms\n3003ms\n" // distinct: duplicates would run once
	out, err := runShoal(t, ctx, strings.NewReader(in), "submit", "--node", addr, "--type", "sleep", "--stdin")
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(out)
	// Kill a worker that holds leases.
	var victim string
	waitStatus(t, ctx, addr, "a worker running tasks", func(st *messages.Status) bool {
		for _, e := range st.Executors {
			if e.Leases > 0 {
				victim = e.ID
				return true
			}
		}
		return false
	})
	pid := childPID(t, node.cmd.Process.Pid, victim)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (pid %d)", victim, pid)

	out, err = runShoal(t, ctx, nil, append([]string{"wait", "--node", addr}, ids...)...)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] == "ID" {
			continue
		}
		if f[1] != "done" {
			t.Errorf("task %s %s", f[0], f[1])
		}
		if f[2] == "2" { // the killed worker's attempt counts
			moved++
		}
	}
	if moved == 0 {
		t.Fatalf("no task ran a second attempt: the killed worker held none?\n%s", out)
	}
	st := nodeStatus(t, ctx, addr)
	if st == nil || st.Counters["evicted"] == 0 || st.Counters["done"] != 4 {
		t.Fatalf("status %+v, want evicted > 0 and 4 done", st)
	}
	if e := executorNamed(st, victim); e == nil || e.State != messages.ExecRestarting {
		t.Fatalf("killed worker %+v, want restarting (its restart waits 1 min)", e)
	}
}

// TestIdleWorkerSleepsAndWakes: a launched worker idle for --sleep-after
// is put to sleep (status shows it), and a task for it wakes it and runs.
func TestIdleWorkerSleepsAndWakes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	node, addr := startSupervisedNode(t, tmp, "--name", "n1", "--executors", "1", "--executor-args", "--types echo",
		"--sleep-after", "500ms", "--sleep-min-active", "0", "--health-interval", "100ms")
	defer node.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitStatus(t, ctx, addr, "n1-exec-1 sleeping", func(st *messages.Status) bool {
		e := executorNamed(st, "n1-exec-1")
		return e != nil && e.State == messages.ExecSleeping
	})
	out, err := runShoal(t, ctx, nil, "submit", "--node", addr, "--type", "echo", "--payload", "wake", "--wait")
	if err != nil || !strings.Contains(out, "done") {
		t.Fatalf("task for the sleeping worker: %q %v", out, err)
	}
	st := nodeStatus(t, ctx, addr)
	if st == nil || st.Counters["woken"] < 1 || st.Counters["slept"] < 1 {
		t.Fatalf("status %+v, want slept and woken counted", st)
	}
	// Draining through the CLI: the worker takes no new work.
	if e := executorNamed(st, "n1-exec-1"); e == nil {
		t.Fatal("worker gone")
	}
	out, err = runShoal(t, ctx, nil, "drain", "--node", addr, "n1-exec-1")
	if err != nil || !strings.Contains(out, "draining") {
		t.Fatalf("drain: %q %v", out, err)
	}
	if _, err := runShoal(t, ctx, nil, "drain", "--node", addr, "nobody"); err == nil {
		t.Fatal("draining an unknown executor succeeded")
	}
}

// TestLostConnectionEvictsAtOnce: a worker the node did not launch is
// SIGKILLed mid-task. The node sees its connection drop and requeues its
// leases at once: with a 5 minute lease TTL and a 4 minute health timeout,
// only that explains the tasks finishing on the other worker in time.
func TestLostConnectionEvictsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	node, addr := startSupervisedNode(t, tmp, "--lease-ttl", "5m", "--health-timeout", "4m", "--sleep-policy", "off")
	defer node.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	victim := startProc(t, filepath.Join(tmp, "victim.log"), "shoal worker", "worker", "--node", addr, "--id", "victim", "--types", "sleep", "--slots", "4")
	out, err := runShoal(t, ctx, strings.NewReader("2000ms\n2001ms\n2002ms\n"), "submit", "--node", addr, "--type", "sleep", "--stdin")
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(out)
	waitStatus(t, ctx, addr, "victim running the tasks", func(st *messages.Status) bool {
		e := executorNamed(st, "victim")
		return e != nil && e.Leases == 3
	})
	victim.kill()
	startProc(t, filepath.Join(tmp, "other.log"), "shoal worker", "worker", "--node", addr, "--id", "other", "--types", "sleep", "--slots", "4")
	out, err = runShoal(t, ctx, nil, append([]string{"wait", "--node", addr}, ids...)...)
	if err != nil {
		t.Fatal(err)
	}
	for id, state := range outcomeLines(out) {
		if state != "done" {
			t.Errorf("task %d %s", id, state)
		}
	}
	if st := nodeStatus(t, ctx, addr); st == nil || st.Counters["evicted"] != 3 || executorNamed(st, "victim") != nil {
		t.Fatalf("status %+v, want 3 evicted and the victim gone", st)
	}
}

// TestUnhealthyWorkerKilledRestartedThenFailed: a launched worker whose own
// health check fails (reported on its heartbeats) is killed and restarted;
// failing again past --max-restarts, it is marked failed with an alert
// naming the health check.
func TestUnhealthyWorkerKilledRestartedThenFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	node, addr := startSupervisedNode(t, tmp, "--name", "n1", "--lease-ttl", "2s", "--executors", "1",
		"--executor-args", "--types echo --unhealthy-after 200ms", "--max-restarts", "1", "--restart-base", "100ms",
		"--health-interval", "50ms", "--sleep-policy", "off")
	defer node.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := waitStatus(t, ctx, addr, "n1-exec-1 failed", func(st *messages.Status) bool {
		e := executorNamed(st, "n1-exec-1")
		return e != nil && e.State == messages.ExecFailed
	})
	if len(st.Alerts) != 1 || !strings.Contains(st.Alerts[0].Message, "health check failed: injected fault") || st.Counters["restarts"] != 1 {
		t.Fatalf("alerts %+v restarts %d, want one alert naming the health check after 1 restart", st.Alerts, st.Counters["restarts"])
	}
}

// TestLaunchedWorkersUseTheNodesTLSAndToken: a node with mutual TLS and a
// token launches its workers with its TLS files and token, so they
// register and run work; a client with the same credentials sees it done.
func TestLaunchedWorkersUseTheNodesTLSAndToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp, certs := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := runShoal(t, ctx, nil, "dev-certs", "--out", certs); err != nil {
		t.Fatal(err)
	}
	const token = "launch-token"
	node, addr := startSupervisedNode(t, tmp, append([]string{"--name", "n1", "--executors", "1", "--executor-args", "--types echo",
		"--token", token}, tlsArgs(certs, "node")...)...)
	defer node.stop()
	client := append(tlsArgs(certs, "client"), "--token", token)
	out, err := runShoal(t, ctx, nil, append([]string{"submit", "--node", addr, "--type", "echo", "--payload", "over-tls",
		"--wait", "--timeout", "60s"}, client...)...)
	if err != nil || !strings.Contains(out, "done") {
		t.Fatalf("task for the launched worker: %q %v; node log in %s", out, err, tmp)
	}
}
