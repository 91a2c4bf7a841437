package table_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/table"
)

// testPutBatch: a batch writes every instruction once, in order; a second
// batch over the same attempts (and duplicates inside one batch) returns
// the existing rows; config instructions pass through.
func testPutBatch(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	ctx := t.Context()
	var ins []table.Instruction
	for i := range 1200 { // more than one statement's rows
		ins = append(ins, table.Instruction{Node: "n", TaskID: uint64(i + 1), Attempt: 1, Type: "x", Payload: fmt.Appendf(nil, "p%d", i)})
	}
	got, err := tb.PutBatch(ctx, ins)
	if err != nil {
		t.Fatalf("PutBatch: %v", err)
	}
	if len(got) != len(ins) {
		t.Fatalf("PutBatch returned %d rows, want %d", len(got), len(ins))
	}
	ids := map[int64]bool{}
	for i, g := range got {
		if g.TaskID != ins[i].TaskID || string(g.Payload) != string(ins[i].Payload) || g.State != table.StateNew || g.Kind != table.KindTask || ids[g.ID] {
			t.Fatalf("row %d: %+v", i, g)
		}
		ids[g.ID] = true
	}
	again, err := tb.PutBatch(ctx, []table.Instruction{ins[5], ins[5], {Node: "n", TaskID: 5000, Attempt: 1, Type: "x"},
		{Kind: table.KindConfig, Host: "h", Payload: []byte(`{}`)}})
	if err != nil {
		t.Fatalf("PutBatch again: %v", err)
	}
	if again[0].ID != got[5].ID || again[1].ID != got[5].ID || ids[again[2].ID] || again[3].Kind != table.KindConfig {
		t.Fatalf("second batch: %+v", again)
	}
	if _, err := tb.PutBatch(ctx, []table.Instruction{{Node: "n", Type: "x", Attempt: 1}}); !errors.Is(err, table.ErrInvalid) {
		t.Fatalf("PutBatch without a task id: %v, want ErrInvalid", err)
	}
}

// testCompleteBatch: results land on the instructions taken by the taker;
// one not taken (new, another taker's, already done) is refused alone.
func testCompleteBatch(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	ctx := t.Context()
	var ins []table.Instruction
	for i := range 700 {
		ins = append(ins, table.Instruction{Node: "n", TaskID: uint64(i + 1), Attempt: 1, Type: "x"})
	}
	if _, err := tb.PutBatch(ctx, ins); err != nil {
		t.Fatal(err)
	}
	mine := take(t, tb, table.TakeRequest{Taker: "a", Types: []string{"x"}, Lease: time.Minute, Max: 600})
	theirs := take(t, tb, table.TakeRequest{Taker: "b", Types: []string{"x"}, Lease: time.Minute, Max: 1})
	var cs []table.Completion
	for i, in := range mine {
		c := table.Completion{ID: in.ID, Result: fmt.Appendf(nil, "r%d", in.TaskID)}
		if i%3 == 0 {
			c = table.Completion{ID: in.ID, Failure: "boom"}
		}
		cs = append(cs, c)
	}
	cs = append(cs, table.Completion{ID: theirs[0].ID, Result: []byte("stolen")}, table.Completion{ID: mine[0].ID + 650, Result: []byte("new one")})
	errs, err := tb.CompleteBatch(ctx, "a", cs)
	if err != nil {
		t.Fatalf("CompleteBatch: %v", err)
	}
	for i, e := range errs {
		if (i < len(mine)) != (e == nil) || (e != nil && !errors.Is(e, table.ErrNotTaken)) {
			t.Fatalf("completion %d: %v", i, e)
		}
	}
	for i, in := range mine {
		g := get(t, tb, in.ID)
		want, state := fmt.Sprintf("r%d", in.TaskID), table.StateDone
		if i%3 == 0 {
			want, state = "", table.StateFailed
		}
		if g.State != state || string(g.Result) != want || (state == table.StateFailed && g.Error != "boom") {
			t.Fatalf("instruction %d: %+v", in.ID, g)
		}
	}
	if g := get(t, tb, theirs[0].ID); g.State != table.StateTaken {
		t.Fatalf("another taker's instruction: %+v", g)
	}
	// A second result for the same instructions: refused, the first stands.
	errs, err = tb.CompleteBatch(ctx, "a", cs[:2])
	if err != nil || !errors.Is(errs[0], table.ErrNotTaken) || !errors.Is(errs[1], table.ErrNotTaken) {
		t.Fatalf("second results: %v, %v", errs, err)
	}
}

// testOtherHandleWake: a write through one handle wakes another handle's
// subscribers (PostgreSQL: NOTIFY; SQLite: data_version).
func testOtherHandleWake(t *testing.T, o opener) {
	dsn := o.fresh(t)
	a, b := o.open(t, dsn), o.open(t, dsn)
	ch, stop := b.Subscribe()
	defer stop()
	time.Sleep(50 * time.Millisecond)
	drain(ch)
	start := time.Now()
	put(t, a, table.Instruction{TaskID: 1, Attempt: 1, Type: "x"})
	select {
	case <-ch:
		t.Logf("woken %v after the write", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up of another handle after a Put")
	}
}

// testFinishedSince: a node's instructions finished at or after a time,
// not another node's, not unfinished ones.
func testFinishedSince(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	put(t, tb, table.Instruction{Node: "a", TaskID: 1, Attempt: 1, Type: "x"})
	put(t, tb, table.Instruction{Node: "a", TaskID: 2, Attempt: 1, Type: "x"})
	put(t, tb, table.Instruction{Node: "b", TaskID: 1, Attempt: 1, Type: "x"})
	got := take(t, tb, table.TakeRequest{Taker: "t", Types: []string{"x"}, Lease: time.Minute, Max: 3})
	for _, in := range got {
		if in.TaskID == 1 {
			if err := tb.Complete(ctx, in.ID, "t", []byte("ok"), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	fin, err := tb.FinishedSince(ctx, "a", before)
	if err != nil || len(fin) != 1 || fin[0].Node != "a" || fin[0].TaskID != 1 || string(fin[0].Result) != "ok" || fin[0].Finished.Before(before) {
		t.Fatalf("FinishedSince(a) = %+v, %v", fin, err)
	}
	if fin, err := tb.FinishedSince(ctx, "a", time.Now().Add(time.Minute)); err != nil || len(fin) != 0 {
		t.Fatalf("FinishedSince(a, future) = %+v, %v", fin, err)
	}
}
