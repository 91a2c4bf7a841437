package table_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/store/pgtest"
)

// opener opens a fresh table for a test, and more handles on the same one
// (as another process would): open(t) makes a new database, again(t, dsn)
// opens the same one.
type opener struct {
	fresh func(t *testing.T) string // a new, empty database's DSN
	cfg   func(dsn string) table.Config
}

func (o opener) open(t *testing.T, dsn string) table.Table {
	t.Helper()
	tb, err := table.Open(t.Context(), o.cfg(dsn))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	return tb
}

// contract is the suite both backends pass.
func contract(t *testing.T, o opener) {
	t.Run("PutTakeComplete", func(t *testing.T) { testPutTakeComplete(t, o) })
	t.Run("PutIdempotent", func(t *testing.T) { testPutIdempotent(t, o) })
	t.Run("TakeMatchesHostAndType", func(t *testing.T) { testTakeMatches(t, o) })
	t.Run("ConcurrentTakers", func(t *testing.T) { testConcurrentTakers(t, o) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, o) })
	t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, o) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, o) })
	t.Run("Purge", func(t *testing.T) { testPurge(t, o) })
	t.Run("Status", func(t *testing.T) { testStatus(t, o) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, o) })
	t.Run("LocalWake", func(t *testing.T) { testLocalWake(t, o) })
	t.Run("PutBatch", func(t *testing.T) { testPutBatch(t, o) })
	t.Run("CompleteBatch", func(t *testing.T) { testCompleteBatch(t, o) })
	t.Run("OtherHandleWake", func(t *testing.T) { testOtherHandleWake(t, o) })
	t.Run("FinishedSince", func(t *testing.T) { testFinishedSince(t, o) })
}

func put(t *testing.T, tb table.Table, in table.Instruction) table.Instruction {
	t.Helper()
	got, err := tb.Put(t.Context(), in)
	if err != nil {
		t.Fatalf("Put(%+v): %v", in, err)
	}
	return got
}

func take(t *testing.T, tb table.Table, r table.TakeRequest) []table.Instruction {
	t.Helper()
	got, err := tb.Take(t.Context(), r)
	if err != nil {
		t.Fatalf("Take(%+v): %v", r, err)
	}
	return got
}

func get(t *testing.T, tb table.Table, id int64) table.Instruction {
	t.Helper()
	got, err := tb.Get(t.Context(), id)
	if err != nil || len(got) != 1 {
		t.Fatalf("Get(%d) = %v, %v", id, got, err)
	}
	return got[0]
}

func testPutTakeComplete(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	in := put(t, tb, table.Instruction{TaskID: 7, Attempt: 1, Type: "batch", Payload: []byte("in")})
	if in.ID == 0 || in.State != table.StateNew || in.Kind != table.KindTask || in.Created.IsZero() || string(in.Payload) != "in" {
		t.Fatalf("Put returned %+v", in)
	}
	got := take(t, tb, table.TakeRequest{Host: "h1", Taker: "h1/a", Types: []string{"batch"}, Lease: time.Minute, Max: 10})
	if len(got) != 1 || got[0].ID != in.ID || got[0].State != table.StateTaken || got[0].Taker != "h1/a" || !got[0].LeaseUntil.After(got[0].Taken) {
		t.Fatalf("Take = %+v", got)
	}
	if again := take(t, tb, table.TakeRequest{Host: "h1", Taker: "h1/b", Types: []string{"batch"}, Lease: time.Minute, Max: 10}); len(again) != 0 {
		t.Fatalf("a taken instruction was taken again: %+v", again)
	}
	if fin, err := tb.Finished(t.Context(), []int64{in.ID}); err != nil || len(fin) != 0 {
		t.Fatalf("Finished before completion = %v, %v", fin, err)
	}
	if err := tb.Renew(t.Context(), in.ID, "h1/a", time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if err := tb.Complete(t.Context(), in.ID, "h1/a", []byte("out"), ""); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	fin, err := tb.Finished(t.Context(), []int64{in.ID, 99999})
	if err != nil || len(fin) != 1 || fin[0].State != table.StateDone || string(fin[0].Result) != "out" || fin[0].Finished.IsZero() {
		t.Fatalf("Finished = %+v, %v", fin, err)
	}
	// A failure: the result is the error text.
	f := put(t, tb, table.Instruction{TaskID: 8, Attempt: 1, Type: "batch"})
	take(t, tb, table.TakeRequest{Taker: "h1/a", Types: []string{"batch"}, Lease: time.Minute, Max: 1})
	if err := tb.Complete(t.Context(), f.ID, "h1/a", []byte("ignored"), "exit status 2: disk full"); err != nil {
		t.Fatal(err)
	}
	if g := get(t, tb, f.ID); g.State != table.StateFailed || g.Error != "exit status 2: disk full" || len(g.Result) != 0 {
		t.Fatalf("failed instruction = %+v", g)
	}
}

func testPutIdempotent(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	a := put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "x", Payload: []byte("a")})
	b := put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "x", Payload: []byte("b")})
	if a.ID != b.ID || string(b.Payload) != "a" {
		t.Fatalf("second Put of one attempt = %+v, want the first (%d)", b, a.ID)
	}
	c := put(t, tb, table.Instruction{TaskID: 1, Attempt: 2, Type: "x"})
	if c.ID == a.ID {
		t.Fatal("a new attempt got the old attempt's instruction")
	}
	// Another node's task 1 is another task.
	other := put(t, tb, table.Instruction{Node: "node-2", TaskID: 1, Attempt: 1, Type: "x"})
	if other.ID == a.ID || other.Node != "node-2" {
		t.Fatalf("node-2's task 1 = %+v: it got node-1's instruction", other)
	}
	if again := put(t, tb, table.Instruction{Node: "node-2", TaskID: 1, Attempt: 1, Type: "x"}); again.ID != other.ID {
		t.Fatal("a second Put of node-2's attempt made a new instruction")
	}
	// Config instructions are not keyed by attempt.
	c1 := put(t, tb, table.Instruction{Kind: table.KindConfig, Host: "h", Payload: []byte("heartbeat=2s")})
	c2 := put(t, tb, table.Instruction{Kind: table.KindConfig, Host: "h", Payload: []byte("heartbeat=3s")})
	if c1.ID == c2.ID {
		t.Fatal("two config instructions collapsed into one")
	}
}

func testTakeMatches(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	anyHost := put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "a"})
	forH2 := put(t, tb, table.Instruction{TaskID: 2, Attempt: 1, Type: "a", Host: "h2"})
	otherType := put(t, tb, table.Instruction{TaskID: 3, Attempt: 1, Type: "b"})
	put(t, tb, table.Instruction{Kind: table.KindConfig, Host: "h1", Payload: []byte("x")})
	got := take(t, tb, table.TakeRequest{Host: "h1", Taker: "h1/1", Types: []string{"a"}, Lease: time.Minute, Max: 10})
	if len(got) != 1 || got[0].ID != anyHost.ID {
		t.Fatalf("h1 serving a took %+v, want only %d", got, anyHost.ID)
	}
	got = take(t, tb, table.TakeRequest{Host: "h2", Taker: "h2/1", Types: []string{"a", "b"}, Lease: time.Minute, Max: 1})
	if len(got) != 1 || got[0].ID != forH2.ID {
		t.Fatalf("h2 Max 1 took %+v, want %d (oldest first)", got, forH2.ID)
	}
	got = take(t, tb, table.TakeRequest{Host: "h2", Taker: "h2/1", Types: []string{"a", "b"}, Lease: time.Minute, Max: 5})
	if len(got) != 1 || got[0].ID != otherType.ID {
		t.Fatalf("h2 took %+v, want %d", got, otherType.ID)
	}
}

// testConcurrentTakers races takers on separate handles (as separate
// processes would) for the same instructions: each is taken exactly once.
func testConcurrentTakers(t *testing.T, o opener) {
	dsn := o.fresh(t)
	tb := o.open(t, dsn)
	const n = 300
	for i := range n {
		put(t, tb, table.Instruction{TaskID: uint64(i + 1), Attempt: 1, Type: "race"})
	}
	const takers = 4
	handles := make([]table.Table, takers)
	for i := range handles {
		handles[i] = o.open(t, dsn)
	}
	var mu sync.Mutex
	byID := map[int64][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, takers)
	for i, h := range handles {
		wg.Go(func() {
			taker := fmt.Sprintf("host/%d", i)
			for {
				got, err := h.Take(context.Background(), table.TakeRequest{Host: "host", Taker: taker, Types: []string{"race"}, Lease: time.Minute, Max: 1 + i*3})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, in := range got {
					byID[in.ID] = append(byID[in.ID], taker)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Take: %v", err)
	}
	if len(byID) != n {
		t.Fatalf("%d instructions taken, want %d", len(byID), n)
	}
	for id, who := range byID {
		if len(who) != 1 {
			t.Fatalf("instruction %d taken by %v", id, who)
		}
	}
	// And one instruction, many takers at once: one wins.
	one := put(t, tb, table.Instruction{TaskID: 10_000, Attempt: 1, Type: "one"})
	wins := make(chan string, takers)
	start := make(chan struct{})
	for i, h := range handles {
		wg.Go(func() {
			<-start
			got, err := h.Take(context.Background(), table.TakeRequest{Taker: fmt.Sprint(i), Types: []string{"one"}, Lease: time.Minute, Max: 1})
			if err == nil && len(got) == 1 && got[0].ID == one.ID {
				wins <- fmt.Sprint(i)
			}
		})
	}
	close(start)
	wg.Wait()
	close(wins)
	if w := slices.Collect(chanSeq(wins)); len(w) != 1 {
		t.Fatalf("one instruction taken by %v, want exactly one taker", w)
	}
}

func chanSeq[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}

// testFencing: a second result, a result from a taker that is not the
// holder, and a result after the instruction was cancelled are refused,
// and the first result stands.
func testFencing(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	in := put(t, tb, table.Instruction{TaskID: 5, Attempt: 1, Type: "x"})
	take(t, tb, table.TakeRequest{Taker: "a", Types: []string{"x"}, Lease: time.Minute, Max: 1})
	if err := tb.Complete(t.Context(), in.ID, "b", []byte("from b"), ""); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("Complete by a non-holder = %v, want ErrNotTaken", err)
	}
	if err := tb.Renew(t.Context(), in.ID, "b", time.Minute); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("Renew by a non-holder = %v, want ErrNotTaken", err)
	}
	if err := tb.Complete(t.Context(), in.ID, "a", []byte("first"), ""); err != nil {
		t.Fatal(err)
	}
	if err := tb.Complete(t.Context(), in.ID, "a", []byte("second"), "late failure"); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("second Complete = %v, want ErrNotTaken", err)
	}
	if g := get(t, tb, in.ID); g.State != table.StateDone || string(g.Result) != "first" {
		t.Fatalf("after a second result: %+v, want done with the first", g)
	}
	// A result for an old attempt lands on the old attempt's instruction
	// only: the new attempt's is untouched.
	next := put(t, tb, table.Instruction{TaskID: 5, Attempt: 2, Type: "x"})
	if err := tb.Complete(t.Context(), in.ID, "a", []byte("stale"), ""); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("stale Complete = %v", err)
	}
	if g := get(t, tb, next.ID); g.State != table.StateNew {
		t.Fatalf("new attempt's instruction = %+v, want new", g)
	}
}

func testLeaseExpiry(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	in := put(t, tb, table.Instruction{TaskID: 9, Attempt: 1, Type: "x"})
	keep := put(t, tb, table.Instruction{TaskID: 10, Attempt: 1, Type: "x"})
	take(t, tb, table.TakeRequest{Taker: "dies", Types: []string{"x"}, Lease: 50 * time.Millisecond, Max: 1})
	take(t, tb, table.TakeRequest{Taker: "lives", Types: []string{"x"}, Lease: time.Hour, Max: 1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := tb.Reap(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("Reap = %d, want 1", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	g := get(t, tb, in.ID)
	if g.State != table.StateFailed || !strings.Contains(g.Error, "lease expired") || !strings.Contains(g.Error, "dies") {
		t.Fatalf("expired instruction = %+v", g)
	}
	if err := tb.Complete(t.Context(), in.ID, "dies", []byte("too late"), ""); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("Complete after expiry = %v, want ErrNotTaken", err)
	}
	if err := tb.Renew(t.Context(), in.ID, "dies", time.Minute); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("Renew after expiry = %v, want ErrNotTaken", err)
	}
	if g := get(t, tb, keep.ID); g.State != table.StateTaken {
		t.Fatalf("a live lease was reaped: %+v", g)
	}
}

func testCancel(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	queued := put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "x"})
	if ok, err := tb.Cancel(t.Context(), queued.ID, "task cancelled"); !ok || err != nil {
		t.Fatalf("Cancel new = %v, %v", ok, err)
	}
	if got := take(t, tb, table.TakeRequest{Taker: "a", Types: []string{"x"}, Lease: time.Minute, Max: 5}); len(got) != 0 {
		t.Fatalf("a cancelled instruction was taken: %+v", got)
	}
	running := put(t, tb, table.Instruction{TaskID: 2, Attempt: 1, Type: "x"})
	take(t, tb, table.TakeRequest{Taker: "a", Types: []string{"x"}, Lease: time.Minute, Max: 5})
	if ok, err := tb.Cancel(t.Context(), running.ID, "lease revoked"); !ok || err != nil {
		t.Fatalf("Cancel taken = %v, %v", ok, err)
	}
	if err := tb.Renew(t.Context(), running.ID, "a", time.Minute); !errors.Is(err, table.ErrNotTaken) {
		t.Fatalf("Renew of a cancelled instruction = %v, want ErrNotTaken (the agent stops it)", err)
	}
	if g := get(t, tb, running.ID); g.State != table.StateFailed || g.Error != "lease revoked" {
		t.Fatalf("cancelled = %+v", g)
	}
	if ok, err := tb.Cancel(t.Context(), running.ID, "again"); ok || err != nil {
		t.Fatalf("Cancel of a finished instruction = %v, %v; want false", ok, err)
	}
}

func testPurge(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	done := put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "x"})
	take(t, tb, table.TakeRequest{Taker: "a", Types: []string{"x"}, Lease: time.Minute, Max: 1})
	if err := tb.Complete(t.Context(), done.ID, "a", []byte("r"), ""); err != nil {
		t.Fatal(err)
	}
	running := put(t, tb, table.Instruction{TaskID: 2, Attempt: 1, Type: "x"})
	if n, err := tb.Purge(t.Context(), time.Hour); n != 0 || err != nil {
		t.Fatalf("Purge of an hour = %d, %v; want 0", n, err)
	}
	time.Sleep(5 * time.Millisecond)
	if n, err := tb.Purge(t.Context(), time.Millisecond); n != 1 || err != nil {
		t.Fatalf("Purge = %d, %v; want 1 (the finished one)", n, err)
	}
	if got, _ := tb.Get(t.Context(), done.ID, running.ID); len(got) != 1 || got[0].ID != running.ID {
		t.Fatalf("after Purge: %+v, want only the unfinished instruction", got)
	}
}

func testStatus(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	s := table.HostStatus{Host: "lpar1", Agent: "lpar1/1", Types: []string{"a", "b"}, CPU: 0.5, Mem: 0.25, Disk: 0.75, Procs: 120, IP: "10.0.0.5", Running: 2}
	if err := tb.PutStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	s.CPU, s.Running = 0.9, 3
	if err := tb.PutStatus(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := tb.PutStatus(t.Context(), table.HostStatus{Host: "lpar0", Agent: "lpar0/1"}); err != nil {
		t.Fatal(err)
	}
	got, err := tb.Statuses(t.Context())
	if err != nil || len(got) != 2 {
		t.Fatalf("Statuses = %+v, %v", got, err)
	}
	g := got[1]
	if got[0].Host != "lpar0" || g.Host != "lpar1" || g.CPU != 0.9 || g.Running != 3 || g.Procs != 120 || g.IP != "10.0.0.5" ||
		!slices.Equal(g.Types, []string{"a", "b"}) || g.Reported.IsZero() {
		t.Fatalf("Statuses = %+v", got)
	}
}

func testInvalid(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	for _, in := range []table.Instruction{
		{TaskID: 0, Attempt: 1, Type: "x"},
		{TaskID: 1, Attempt: 0, Type: "x"},
		{TaskID: 1, Attempt: 1},
		{Kind: "reboot", Host: "h"},
		{Kind: table.KindOps},
	} {
		if _, err := tb.Put(t.Context(), in); !errors.Is(err, table.ErrInvalid) {
			t.Errorf("Put(%+v) = %v, want ErrInvalid", in, err)
		}
	}
	if _, err := tb.Take(t.Context(), table.TakeRequest{Taker: "a", Lease: time.Second, Max: 1}); !errors.Is(err, table.ErrInvalid) {
		t.Errorf("Take without types = %v, want ErrInvalid", err)
	}
}

// testLocalWake: a write through a handle wakes that handle's subscribers
// (both backends; PostgreSQL also wakes other handles, TestPostgresNotify).
func testLocalWake(t *testing.T, o opener) {
	tb := o.open(t, o.fresh(t))
	ch, stop := tb.Subscribe()
	defer stop()
	drain(ch)
	put(t, tb, table.Instruction{TaskID: 1, Attempt: 1, Type: "x"})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after a Put through the same handle")
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestSQLite(t *testing.T) {
	contract(t, opener{
		fresh: func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "hosts.db") },
		cfg:   table.DefaultConfig,
	})
}

func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	var mu sync.Mutex
	n := 0
	schemas := map[string]string{} // dsn → schema: one schema per test
	contract(t, opener{
		fresh: func(t *testing.T) string {
			mu.Lock()
			defer mu.Unlock()
			n++
			dsn := fmt.Sprintf("%s&application_name=t%d", url, n)
			schemas[dsn] = fmt.Sprintf("hosts_%d", n)
			return dsn
		},
		cfg: func(dsn string) table.Config {
			mu.Lock()
			defer mu.Unlock()
			c := table.DefaultConfig(dsn)
			c.Schema = schemas[dsn]
			return c
		},
	})
	t.Run("Notify", func(t *testing.T) {
		dsn := url + "&application_name=notify"
		a, err := table.OpenDSN(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := table.OpenDSN(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ch, stop := b.Subscribe()
		defer stop()
		drain(ch)
		if _, err := a.Put(t.Context(), table.Instruction{TaskID: 1, Attempt: 1, Type: "x"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("another handle heard no notification of a Put")
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		// A port nothing listens on: refused at once, typed.
		dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", freePort(t))
		_, err := table.OpenDSN(t.Context(), dsn)
		if !errors.Is(err, table.ErrUnavailable) {
			t.Fatalf("Open of a closed port = %v, want ErrUnavailable", err)
		}
		// A database that does not exist on a live server.
		if _, err := table.OpenDSN(t.Context(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/nope?sslmode=disable", srv.Port)); !errors.Is(err, table.ErrUnavailable) || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("Open of a missing database = %v, want ErrUnavailable naming it", err)
		}
	})
}
