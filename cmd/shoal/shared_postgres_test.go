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
	url := pgtest.Start(t).NewDatabase(t)
	tmp := t.TempDir()
	var procs []*proc
	var remotes []string
	seed := ""
	for i := range 3 {
		name, g, r := fmt.Sprintf("n%d", i+1), freeAddr(t), freeAddr(t)
		args := []string{"node", "--name", name, "--store", url, "--listen", r, "--gossip", g, "--gossip-fast",
			"--lease-ttl", "2s", "--log-level", "info"}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = g
		}
		procs = append(procs, startProc(t, filepath.Join(tmp, name+".log"), "listening on", args...))
		remotes = append(remotes, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := &testCluster{tmp: tmp, remotes: remotes}
	for _, r := range remotes {
		for st := c.status(t, ctx, r); st == nil || len(st.Members) != 3; st = c.status(t, ctx, r) {
			if ctx.Err() != nil {
				t.Fatalf("node %s never saw 3 members; logs in %s", r, tmp)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // routing follows membership within 100 ms

	const n = 1500
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "job-%d\n", i)
	}
	out, err := runShoal(t, ctx, strings.NewReader(in.String()), "submit", "--node", remotes[0], "--type", "echo", "--stdin", "--batch", "250")
	if err != nil {
		t.Fatalf("submit: %v; logs in %s", err, tmp)
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
	victim := route.Tag("n2")
	if len(acked) != n || len(holders) != 3 || holders[victim] == 0 {
		t.Fatalf("%d acknowledged, holders %v; want %d held by all three", len(acked), holders, n)
	}
	procs[1].kill() // for good: n2 never comes back
	t.Logf("n2 killed holding %d of %d pending tasks", holders[victim], n)

	j1 := c.worker(t, 0, "n1", 8)
	j3 := c.worker(t, 2, "n3", 8)

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing []uint64
	for {
		missing = notDone(t, ctx, conn, acked)
		if len(missing) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d acknowledged tasks never completed (first %#x); logs in %s", len(missing), missing[0], tmp)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var moved int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM shoal.moves").Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if moved != holders[victim] {
		t.Errorf("%d tasks moved, want n2's %d", moved, holders[victim])
	}
	ex := executions(t, j1, j3)
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
	t.Logf("all %d acknowledged tasks done; %d adopted from n2", n, moved)
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
