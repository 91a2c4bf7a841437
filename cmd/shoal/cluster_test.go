package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
)

// testCluster is n node processes on loopback, gossiping (fast failure
// detection), each listening on its own remote address.
type testCluster struct {
	tmp     string
	remotes []string
	names   []string
	client  []string // flags of client and worker commands (TLS, token)
	procs   []*proc
}

func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	return startClusterWith(t, n, extra, nil)
}

// startClusterWith starts n nodes with the extra flags nodeArgs; status
// and workers use clientArgs.
func startClusterWith(t *testing.T, n int, extra, clientArgs []string) *testCluster {
	t.Helper()
	c := &testCluster{tmp: t.TempDir(), client: clientArgs}
	var seed string
	for i := range n {
		name, g, r := fmt.Sprintf("n%d", i+1), freeAddr(t), freeAddr(t)
		args := []string{"node", "--name", name, "--data", filepath.Join(c.tmp, name), "--listen", r,
			"--gossip", g, "--gossip-fast", "--log-level", "info"}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = g
		}
		c.procs = append(c.procs, startProc(t, filepath.Join(c.tmp, name+".log"), "listening on", append(args, extra...)...))
		c.remotes, c.names = append(c.remotes, r), append(c.names, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range c.remotes {
		for {
			st := c.status(t, ctx, r)
			if st != nil && len(st.Members) == n {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %s never saw %d members; logs in %s", r, n, c.tmp)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Routing follows membership within 100 ms of the status showing it.
	time.Sleep(300 * time.Millisecond)
	return c
}

func (c *testCluster) status(t *testing.T, ctx context.Context, remote string) *messages.Status {
	out, err := runShoal(t, ctx, nil, append([]string{"status", "--node", remote, "--json"}, c.client...)...)
	if err != nil {
		return nil
	}
	var st messages.Status
	if unmarshalStatus([]byte(out), &st) != nil {
		return nil
	}
	return &st
}

// worker starts a worker process on node i journaling to journal-<tag>.
func (c *testCluster) worker(t *testing.T, i int, tag string, slots int) string {
	j := filepath.Join(c.tmp, "journal-"+tag)
	startProc(t, filepath.Join(c.tmp, "worker-"+tag+".log"), "shoal worker", append([]string{"worker", "--node", c.remotes[i],
		"--types", "echo,sleep", "--slots", strconv.Itoa(slots), "--journal", j, "--log-level", "info"}, c.client...)...)
	return j
}

// executions counts journal lines per payload over the given journals.
func executions(t *testing.T, journals ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, j := range journals {
		f, err := os.Open(j)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), "\t")
			if len(fields) < 5 {
				continue
			}
			p, _ := strconv.Unquote(fields[3])
			out[p]++
		}
		f.Close()
	}
	return out
}

// outcomeLines parses `submit --wait` / `wait` output: id → state.
func outcomeLines(out string) map[uint64]string {
	m := map[uint64]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if id, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			m[id] = f[1]
		}
	}
	return m
}

// The same payloads submitted at each of three nodes at once run once in
// total: every node splits its batch by partition owner, each owner
// dedupes its partitions, and every submission completes — most of each
// batch is owned by another node than the one it was submitted to. Waiting
// for a node's ids at another node is routed to the holders.
func TestClusterDedupesAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startCluster(t, 3)
	var journals []string
	for i := range c.remotes {
		journals = append(journals, c.worker(t, i, c.names[i], 8))
	}
	const n = 600
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "same-%d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	outs := make([]string, len(c.remotes))
	var wg sync.WaitGroup
	for i, r := range c.remotes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runShoal(t, ctx, strings.NewReader(in.String()), "submit", "--node", r, "--type", "echo",
				"--stdin", "--batch", "100", "--wait", "--timeout", "60s")
			if err != nil {
				t.Errorf("submit at %s: %v", r, err)
			}
			outs[i] = out
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("logs in %s", c.tmp)
	}
	holders := map[uint16]int{}
	var fromN1 []string
	for i, out := range outs {
		states := outcomeLines(out)
		if len(states) != n {
			t.Fatalf("submit at %s: %d outcomes, want %d", c.remotes[i], len(states), n)
		}
		for id, s := range states {
			if s != "done" {
				t.Fatalf("task %d submitted at %s is %s, want done", id, c.remotes[i], s)
			}
			if i == 0 {
				holders[route.TagOf(id)]++
				fromN1 = append(fromN1, strconv.FormatUint(id, 10))
			}
		}
	}
	if len(holders) != 3 {
		t.Errorf("tasks submitted at n1 are held by %d nodes (%v), want all 3", len(holders), holders)
	}
	ex := executions(t, journals...)
	total := 0
	for p, k := range ex {
		total += k
		if k != 1 {
			t.Errorf("payload %q ran %d times", p, k)
		}
	}
	if len(ex) != n || total != n {
		t.Errorf("%d payloads ran %d times in total, want %d once each", len(ex), total, n)
	}
	// n1's ids asked at n3: routed to each holder.
	out, err := runShoal(t, ctx, strings.NewReader(strings.Join(fromN1, "\n")+"\n"), "wait", "--node", c.remotes[2], "--timeout", "30s")
	if err != nil {
		t.Fatal(err)
	}
	got := outcomeLines(out)
	if len(got) != n {
		t.Fatalf("wait at n3 for n1's ids: %d outcomes, want %d", len(got), n)
	}
	for id, s := range got {
		if s != "done" {
			t.Fatalf("wait at n3: task %d is %s", id, s)
		}
	}

	// A batch with one bad task is refused whole at the node it reaches:
	// nothing is written on any node.
	accepted := func() (sum int64) {
		for _, r := range c.remotes {
			sum += c.status(t, ctx, r).Counters["accepted"]
		}
		return sum
	}
	before := accepted()
	var bad strings.Builder
	for i := range 50 {
		fmt.Fprintf(&bad, "fresh-%d\n", i)
	}
	bad.WriteString(strings.Repeat("x", 1<<20+1) + "\n")
	_, err = runShoal(t, ctx, strings.NewReader(bad.String()), "submit", "--node", c.remotes[1], "--type", "echo", "--stdin", "--batch", "100")
	if err == nil {
		t.Fatal("a batch with a 1 MiB + 1 payload was accepted")
	}
	if after := accepted(); after != before {
		t.Fatalf("a refused batch wrote %d tasks", after-before)
	}
}

// A node with no executors keeps its partitions' tasks queued; an idle peer
// with free slots steals them (as steal/<node> on its dispatcher), runs
// them on its own worker and reports the results back: every task
// completes, each payload once, and the executions of n1's tasks happened
// on n2's worker.
func TestClusterIdleNodeStealsWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startCluster(t, 2)
	journal := c.worker(t, 1, "n2", 8)
	const n = 2000
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "steal-%d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := runShoal(t, ctx, strings.NewReader(in.String()), "submit", "--node", c.remotes[0], "--type", "echo",
		"--stdin", "--batch", "500", "--wait", "--timeout", "90s")
	if err != nil {
		t.Fatalf("submit at n1: %v; logs in %s", err, c.tmp)
	}
	states := outcomeLines(out)
	n1 := 0
	for id, s := range states {
		if s != "done" {
			t.Fatalf("task %d is %s", id, s)
		}
		if route.TagOf(id) == route.Tag("n1") {
			n1++
		}
	}
	if len(states) != n || n1 == 0 {
		t.Fatalf("%d outcomes (%d held by n1), want %d with some at n1", len(states), n1, n)
	}
	ex := executions(t, journal)
	for p, k := range ex {
		if k != 1 {
			t.Errorf("payload %q ran %d times", p, k)
		}
	}
	if len(ex) != n {
		t.Errorf("%d payloads ran on n2's worker, want all %d", len(ex), n)
	}
	st := c.status(t, ctx, c.remotes[1])
	if st == nil {
		t.Fatal("no status from n2")
	}
	if st.Counters["stolen"] < int64(n1) {
		t.Errorf("n2 reports %d stolen, want >= %d", st.Counters["stolen"], n1)
	}
}

// clusterWithStoppedOwner is two nodes with default (LAN) failure detection
// whose second is stopped (SIGSTOP: its sockets stay open, nothing resets a
// connection, it is declared dead after about 5 s): a submission started
// right away surely reaches a router before that.
func clusterWithStoppedOwner(t *testing.T) *testCluster {
	t.Helper()
	c := startCluster(t, 2, "--gossip-fast=false")
	if err := c.procs[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return c
}

// payloadLines is n distinct payloads, one per line (n digests: with 50,
// some surely owned by each of two nodes).
func payloadLines(prefix string, n int) *strings.Reader {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s-%d\n", prefix, i)
	}
	return strings.NewReader(b.String())
}

// A node that stops answering while another node's router waits on it:
// once the failure detector declares it dead, the router fails the
// forwarded part at once with CodeUnavailable ("left the cluster") instead
// of waiting out its 30 s timeout. The client gives up after 25 s, before
// the router's timeout, so only the early failure produces the message.
func TestClusterForwardFailsWhenOwnerLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := clusterWithStoppedOwner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBinary(t), append([]string{"submit", "--node", c.remotes[0], "--type", "echo", "--stdin"}, c.client...)...)
	cmd.Stdin = payloadLines("left", 50)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("submit with a part owned by a stopped node succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "left the cluster") {
		t.Fatalf("submit failed without naming the departed node (err %v, ctx %v):\n%s", err, ctx.Err(), out)
	}
}

// The same with a client that sends each part to its owner itself
// (--route-to-owners): once the node it dialled no longer lists the stopped
// owner, the client stops waiting on it and hands that part to the dialled
// node's router, which now owns every partition: every task is
// acknowledged (its id printed) before the client's 25 s run out (its
// request timeout is 30 s). The process then takes a while to exit
// (protoactor's graceful shutdown waits up to 10 s for its connection to
// the stopped node), so the test reads the ids as they come.
func TestClusterOwnerRoutingClientLeavesDeadOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := clusterWithStoppedOwner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBinary(t), append([]string{"submit", "--node", c.remotes[0], "--type", "echo", "--stdin", "--route-to-owners"}, c.client...)...)
	cmd.Stdin = payloadLines("owner-left", 50)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ids := 0
	sc := bufio.NewScanner(stdout)
	for ids < 50 && sc.Scan() {
		if _, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
			ids++
		}
	}
	if ids != 50 {
		t.Fatalf("%d of 50 tasks acknowledged before the client gave up (ctx %v)", ids, ctx.Err())
	}
}
