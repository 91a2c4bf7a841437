package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store/pgtest"
)

// TestSharedPostgresSurvivesMemberLoss runs three node processes on one
// PostgreSQL store. Tasks submitted with no worker anywhere are held by all
// three (each owner accepts its partitions under its own id tag); one node
// is then SIGKILLed for good and workers join the two survivors. The
// survivors adopt the dead node's pending tasks (after the lease TTL) and
// every acknowledged task completes — found done under its id, or moved to a
// survivor's id that is done — and every payload runs exactly once.
func TestSharedPostgresSurvivesMemberLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	sc := startShared(t, "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 1500
	acked, holders := sc.submitPending(t, ctx, "job", n)
	victim := route.Tag("n2")
	sc.procs[1].kill() // for good: n2 never comes back
	t.Logf("n2 killed holding %d of %d pending tasks", holders[victim], n)

	c := &testCluster{tmp: sc.tmp, remotes: sc.remotes}
	j1 := c.worker(t, 0, "n1", 8)
	j3 := c.worker(t, 2, "n3", 8)
	conn, err := pgx.Connect(ctx, sc.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitDone(t, ctx, conn, acked, sc.tmp)
	var moved int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM shoal.moves").Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if moved != holders[victim] {
		t.Errorf("%d tasks moved, want n2's %d", moved, holders[victim])
	}
	onceEach(t, n, j1, j3)

	// A client waiting on the original ids of n2's tasks, at a survivor,
	// follows the moves: each answers done under its original id, with the
	// adopted id as the one that ran it.
	var victims []uint64
	var in strings.Builder
	for _, id := range acked {
		if route.TagOf(id) == victim {
			victims = append(victims, id)
			fmt.Fprintln(&in, id)
		}
	}
	out, err := runShoal(t, ctx, strings.NewReader(in.String()), "wait", "--node", sc.remotes[0], "--timeout", "30s")
	if err != nil {
		t.Fatalf("wait on n2's original ids at n1: %v\n%s", err, out)
	}
	doneLines := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == "done" {
			id, _ := strconv.ParseUint(f[0], 10, 64)
			alias, _ := strconv.ParseUint(f[3], 10, 64)
			if route.TagOf(id) != victim || alias == 0 || route.TagOf(alias) == victim {
				t.Errorf("wait line %q: want n2's original id aliased to a survivor's id", line)
			}
			doneLines++
		}
	}
	if doneLines != len(victims) {
		t.Errorf("wait at n1 on %d of n2's original ids: %d done\n%s", len(victims), doneLines, out)
	}
	t.Logf("all %d acknowledged tasks done; %d adopted from n2; waiting on their old ids at n1 answered", n, moved)
}

// notDone returns the ids among ids that have no done result, directly or
// through the moves table (ids are stored XOR 2^63, see store/postgres).
func notDone(t *testing.T, ctx context.Context, conn *pgx.Conn, ids []uint64) []uint64 {
	t.Helper()
	enc := make([]int64, len(ids))
	for i, id := range ids {
		enc[i] = int64(id ^ 1<<63)
	}
	rows, err := conn.Query(ctx, `SELECT a.id FROM unnest($1::bigint[]) AS a(id)
LEFT JOIN shoal.moves m ON m.old_id = a.id
LEFT JOIN shoal.results r ON r.id = COALESCE(m.new_id, a.id) AND r.state = $2
WHERE r.id IS NULL`, enc, int16(messages.StateDone))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, uint64(v)^1<<63)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sharedCluster is three node processes on one PostgreSQL store.
type sharedCluster struct {
	url, tmp string
	remotes  []string
	args     [][]string
	procs    []*proc
}

// startShared starts n1..n3 on a fresh database with lease TTL ttl and
// waits until each lists all three.
func startShared(t *testing.T, ttl string) *sharedCluster {
	t.Helper()
	sc := &sharedCluster{url: pgtest.Start(t).NewDatabase(t), tmp: t.TempDir()}
	seed := ""
	for i := range 3 {
		name, g, r := fmt.Sprintf("n%d", i+1), freeAddr(t), freeAddr(t)
		args := []string{"node", "--name", name, "--store", sc.url, "--listen", r, "--gossip", g, "--gossip-fast",
			"--lease-ttl", ttl, "--log-level", "info"}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = g
		}
		sc.procs = append(sc.procs, startProc(t, filepath.Join(sc.tmp, name+".log"), "listening on", args...))
		sc.remotes, sc.args = append(sc.remotes, r), append(sc.args, args)
	}
	sc.waitMembers(t, 3)
	return sc
}

// waitMembers waits until every live node lists n members.
func (sc *sharedCluster) waitMembers(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &testCluster{tmp: sc.tmp, remotes: sc.remotes}
	for _, r := range sc.remotes {
		for st := c.status(t, ctx, r); st == nil || len(st.Members) != n; st = c.status(t, ctx, r) {
			if ctx.Err() != nil {
				t.Fatalf("node %s never saw %d members; logs in %s", r, n, sc.tmp)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // routing follows membership within 100 ms
}

// submitPending submits n payloads prefix-0.. at node 0 and returns the
// acknowledged ids and how many each node tag holds.
func (sc *sharedCluster) submitPending(t *testing.T, ctx context.Context, prefix string, n int) ([]uint64, map[uint16]int) {
	t.Helper()
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "%s-%d\n", prefix, i)
	}
	out, err := runShoal(t, ctx, strings.NewReader(in.String()), "submit", "--node", sc.remotes[0], "--type", "echo", "--stdin", "--batch", "250")
	if err != nil {
		t.Fatalf("submit: %v; logs in %s", err, sc.tmp)
	}
	var acked []uint64
	holders := map[uint16]int{}
	for _, line := range strings.Fields(out) {
		id, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("submit output %q: %v", line, err)
		}
		acked = append(acked, id)
		holders[route.TagOf(id)]++
	}
	if len(acked) != n || len(holders) != 3 {
		t.Fatalf("%d acknowledged, holders %v; want %d held by all three", len(acked), holders, n)
	}
	return acked, holders
}

// waitDone waits until every id in acked is done, directly or moved.
func waitDone(t *testing.T, ctx context.Context, conn *pgx.Conn, acked []uint64, logs string) {
	t.Helper()
	for {
		missing := notDone(t, ctx, conn, acked)
		if len(missing) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d acknowledged tasks never completed (first %#x); logs in %s", len(missing), missing[0], logs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// onceEach checks that each of n payloads ran exactly once over journals.
func onceEach(t *testing.T, n int, journals ...string) {
	t.Helper()
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
}

// TestSharedPostgresRestartWithinTTLKeepsTasks: a member killed and
// restarted (same name and addresses) well within the lease TTL keeps its
// tasks: nothing is adopted, and every payload runs exactly once.
func TestSharedPostgresRestartWithinTTLKeepsTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	sc := startShared(t, "20s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 900
	acked, holders := sc.submitPending(t, ctx, "stay", n)
	sc.procs[1].kill()
	sc.procs[1] = startProc(t, filepath.Join(sc.tmp, "n2-again.log"), "listening on", sc.args[1]...)
	sc.waitMembers(t, 3)
	t.Logf("n2 restarted holding %d of %d pending tasks", holders[route.Tag("n2")], n)
	c := &testCluster{tmp: sc.tmp, remotes: sc.remotes}
	var journals []string
	for i, name := range []string{"n1", "n2", "n3"} {
		journals = append(journals, c.worker(t, i, name, 8))
	}
	conn, err := pgx.Connect(ctx, sc.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitDone(t, ctx, conn, acked, sc.tmp)
	var moved int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM shoal.moves").Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if moved != 0 {
		t.Errorf("%d tasks were adopted although n2 came back within the lease TTL", moved)
	}
	onceEach(t, n, journals...)
}
