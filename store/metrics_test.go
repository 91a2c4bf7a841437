package store

import (
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store/pgtest"
	"github.com/shoalrt/shoal/task"
)

func TestLatencyHistogramBuckets(t *testing.T) {
	var h LatencyHistogram
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 51 * time.Microsecond, time.Millisecond, time.Hour} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 5 || s.Sum != time.Hour+time.Millisecond+101*time.Microsecond {
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
	want := map[time.Duration]uint64{50 * time.Microsecond: 2, 100 * time.Microsecond: 3, 800 * time.Microsecond: 3, 1600 * time.Microsecond: 4}
	for i, b := range s.Bounds {
		if w, ok := want[b]; ok && s.Cumulative[i] != w {
			t.Errorf("<= %v: %d, want %d", b, s.Cumulative[i], w)
		}
	}
	if last := s.Cumulative[len(s.Cumulative)-1]; last != 4 {
		t.Errorf("last finite bucket %d, want 4 (the hour is +Inf only)", last)
	}
}

// The Pebble store's result totals are written with the results they count
// and survive a reopen; a sweep does not lower them.
func TestPebbleTotalsSurviveReopen(t *testing.T) {
	p, dir := openTest(t)
	var b Batch
	for id := uint64(1); id <= 6; id++ {
		b.Tasks = append(b.Tasks, mkTask(id, messages.ClassNormal))
	}
	commit(t, p, b)
	done1, done2 := mkResult(1, messages.ClassNormal, base), mkResult(2, messages.ClassNormal, base)
	dead := mkResult(3, messages.ClassNormal, base)
	dead.State = messages.StateDead
	canc := mkResult(4, messages.ClassNormal, base)
	canc.State = messages.StateCancelled
	dup := mkResult(5, messages.ClassNormal, base)
	dup.AliasOf = 1
	commit(t, p, Batch{Results: []task.Result{done1, dead}})
	commit(t, p, Batch{Results: []task.Result{done2, canc, dup}})
	want := Totals{Done: 2, Dead: 1, Cancelled: 1, Deduplicated: 1}
	if got, durable := p.Totals(); got != want || !durable {
		t.Fatalf("totals %+v durable %v, want %+v", got, durable, want)
	}
	if s := p.CommitLatency(); s.Count < 3 {
		t.Errorf("commit latency observed %d groups, want >= 3", s.Count)
	}
	if s := p.SyncLatency(); s.Count < 3 {
		t.Errorf("sync latency observed %d groups, want >= 3", s.Count)
	}
	if _, err := p.Sweep(t.Context(), base.Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q := openAt(t, DefaultPebbleConfig(dir))
	if got, _ := q.Totals(); got != want {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
}

// BenchmarkReadTotals is the start-up cost of the durable totals: one point
// read of m/totals, whatever the number of results (docs/metrics.md).
func BenchmarkReadTotals(b *testing.B) {
	p, err := OpenPebble(DefaultPebbleConfig(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const n = 100_000
	for lo := uint64(1); lo <= n; lo += 10_000 {
		var bt Batch
		for id := lo; id < lo+10_000; id++ {
			bt.Tasks = append(bt.Tasks, mkTask(id, messages.ClassNormal))
			bt.Results = append(bt.Results, mkResult(id, messages.ClassNormal, base))
		}
		if err := p.Commit(b.Context(), &bt); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if t, err := readTotals(p.db); err != nil || t.Done != n {
			b.Fatalf("%+v %v", t, err)
		}
	}
}

// The PostgreSQL store observes its group commits and counts the results it
// wrote since open (not durably: a reopen starts at zero).
func TestPostgresMetered(t *testing.T) {
	srv := pgtest.Start(t)
	cfg := DefaultPostgresConfig(srv.NewDatabase(t))
	p, err := OpenPostgres(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b Batch
	for id := uint64(1); id <= 3; id++ {
		b.Tasks = append(b.Tasks, mkTask(id, messages.ClassNormal))
	}
	if err := p.Commit(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	dead := mkResult(2, messages.ClassNormal, base)
	dead.State = messages.StateDead
	if err := p.Commit(t.Context(), &Batch{Results: []task.Result{mkResult(1, messages.ClassNormal, base), dead}}); err != nil {
		t.Fatal(err)
	}
	if got, durable := p.Totals(); got != (Totals{Done: 1, Dead: 1}) || durable {
		t.Errorf("totals %+v durable %v, want done 1 dead 1, not durable", got, durable)
	}
	if c, s := p.CommitLatency().Count, p.SyncLatency().Count; c != 2 || s != 2 {
		t.Errorf("observed %d commits and %d syncs, want 2 and 2", c, s)
	}
}
