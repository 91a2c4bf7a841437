// Package storetest is the contract every store.Store implementation is held
// to: one suite, run against Pebble and PostgreSQL (store/conformance_test.go).
// It uses the Store interface only; tests of one implementation's internals
// (held committers, crash file systems, group sizes) stay with that
// implementation.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/task"
)

// Opener opens a store on one backing (a directory, a database). Calling it
// again after the previous store was closed opens the same data again. It
// closes the store it returns when t ends (a second Close is harmless).
type Opener func(t *testing.T) store.Store

// Run runs the contract. fresh makes a new, empty backing for each test.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"CommitReadBack", testCommitReadBack},
		{"SizeAndPin", testSizeAndPin},
		{"Timeout", testTimeout},
		{"Paused", testPaused},
		{"PendingOrderPerClass", testPendingOrderPerClass},
		{"ResultsRemovePending", testResultsRemovePending},
		{"Attempts", testAttempts},
		{"Starts", testStarts},
		{"AsyncCallOrder", testAsyncCallOrder},
		{"DuplicateIDsInBatch", testDuplicateIDsInBatch},
		{"FullIDRange", testFullIDRange},
		{"Reopen", testReopen},
		{"MaxIDSurvivesSweep", testMaxIDSurvivesSweep},
		{"Sweep", testSweep},
		{"SweepNotStarved", testSweepNotStarved},
		{"ResultsSince", testResultsSince},
		{"ConcurrentCommits", testConcurrentCommits},
		{"ContextCancelled", testContextCancelled},
		{"Closed", testClosed},
		{"CloseDrainsAsync", testCloseDrainsAsync},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

// Base is an arbitrary fixed instant; records carry times relative to it.
var Base = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// Task returns a task record with every field set.
func Task(id uint64, c messages.Class) task.Record {
	return task.Record{
		ID:           id,
		Type:         "resize",
		Payload:      []byte(fmt.Sprintf("payload-%d", id)),
		Priority:     50,
		Class:        c,
		Digest:       task.Digest{byte(id), 0xab},
		Requirements: map[string]string{"gpu": "=1"},
		MaxAttempts:  3,
		SubmittedAt:  Base.Add(time.Duration(id) * time.Second).UnixNano(),
	}
}

// Result returns a done result of task id.
func Result(id uint64, c messages.Class, finished time.Time) task.Result {
	return task.Result{
		ID:         id,
		Class:      c,
		Digest:     task.Digest{byte(id), 0xab},
		State:      messages.StateDone,
		Output:     []byte(fmt.Sprintf("out-%d", id)),
		Attempts:   1,
		FinishedAt: finished.UnixNano(),
	}
}

func commit(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), &b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func readRecord(t *testing.T, s store.Store, id uint64) (task.Record, bool) {
	t.Helper()
	rec, ok, err := s.Task(t.Context(), id)
	if err != nil {
		t.Fatalf("Task(%d): %v", id, err)
	}
	return rec, ok
}

func result(t *testing.T, s store.Store, id uint64) (task.Result, bool) {
	t.Helper()
	rec, ok, err := s.Result(t.Context(), id)
	if err != nil {
		t.Fatalf("Result(%d): %v", id, err)
	}
	return rec, ok
}

// PendingIDs returns the ids Pending returns, checking their class.
func PendingIDs(t *testing.T, s store.Store, c messages.Class, after uint64, limit int) []uint64 {
	t.Helper()
	recs, err := s.Pending(t.Context(), c, after, limit)
	if err != nil {
		t.Fatalf("Pending(%v): %v", c, err)
	}
	ids := []uint64{}
	for _, r := range recs {
		if r.Class != c {
			t.Errorf("Pending(%v) returned task %d of class %v", c, r.ID, r.Class)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func maxID(t *testing.T, s store.Store) uint64 {
	t.Helper()
	id, err := s.MaxID(t.Context())
	if err != nil {
		t.Fatalf("MaxID: %v", err)
	}
	return id
}

func testCommitReadBack(t *testing.T, open Opener) {
	s := open(t)
	want := []task.Record{Task(1, messages.ClassHigh), Task(2, messages.ClassNormal), Task(3, messages.ClassLow)}
	want[2].Requirements = nil
	want[1].Payload = nil
	commit(t, s, store.Batch{Tasks: want})
	for _, w := range want {
		if got, ok := readRecord(t, s, w.ID); !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("Task(%d) = %+v, %v; want %+v", w.ID, got, ok, w)
		}
	}
	if _, ok := readRecord(t, s, 4); ok {
		t.Errorf("Task(4) found, want missing")
	}
	if _, ok := result(t, s, 1); ok {
		t.Errorf("Result(1) found, want missing")
	}
	if err := s.Commit(t.Context(), &store.Batch{}); err != nil {
		t.Errorf("empty Commit: %v", err)
	}
	if err := s.Commit(t.Context(), nil); err != nil {
		t.Errorf("nil Commit: %v", err)
	}
	if err := <-s.CommitAsync(t.Context(), &store.Batch{}); err != nil {
		t.Errorf("empty CommitAsync: %v", err)
	}
}

// testSizeAndPin: a task's typed Size and Pin read back as written, from
// Task, Pending and after a reopen, whatever the requirements say.
func testSizeAndPin(t *testing.T, open Opener) {
	s := open(t)
	want := []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassNormal), Task(3, messages.ClassNormal), Task(4, messages.ClassNormal)}
	want[0].Size, want[0].Pin = 2.5, "exec-1"
	want[0].Requirements = map[string]string{"gpu": "=1", messages.ReqSize: task.SizeRequirement(2.5), messages.ReqPin: task.PinRequirement("exec-1")}
	want[1].Size, want[1].Requirements = math.MaxFloat64, nil
	want[2].Pin = "node-a/exec-2"
	// want[3]: neither.
	commit(t, s, store.Batch{Tasks: want})
	check := func(s store.Store, when string) {
		t.Helper()
		for _, w := range want {
			if got, ok := readRecord(t, s, w.ID); !ok || got.Size != w.Size || got.Pin != w.Pin || !reflect.DeepEqual(got, w) {
				t.Errorf("%s: Task(%d) = %+v, %v; want %+v", when, w.ID, got, ok, w)
			}
		}
		recs, err := s.Pending(t.Context(), messages.ClassNormal, 0, 10)
		if err != nil || len(recs) != len(want) {
			t.Fatalf("%s: Pending = %d records, %v", when, len(recs), err)
		}
		for i, got := range recs {
			if got.Size != want[i].Size || got.Pin != want[i].Pin {
				t.Errorf("%s: Pending task %d: size %v, pin %q; want %v, %q", when, got.ID, got.Size, got.Pin, want[i].Size, want[i].Pin)
			}
		}
	}
	check(s, "written")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t), "reopened")
}

// testTimeout: a task's run timeout is kept, and a task without one reads
// back with none.
func testTimeout(t *testing.T, open Opener) {
	s := open(t)
	want := []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassNormal)}
	want[0].TimeoutMillis = 1500
	commit(t, s, store.Batch{Tasks: want})
	commit(t, s, store.Batch{Attempts: []store.AttemptUpdate{{ID: 1, Attempts: 2}}})
	want[0].Attempts = 2
	check := func(s store.Store, when string) {
		t.Helper()
		for _, w := range want {
			if got, ok := readRecord(t, s, w.ID); !ok || !reflect.DeepEqual(got, w) {
				t.Errorf("%s: Task(%d) = %+v, %v; want %+v", when, w.ID, got, ok, w)
			}
		}
		recs, err := s.Pending(t.Context(), messages.ClassNormal, 0, 10)
		if err != nil || len(recs) != 2 || recs[0].TimeoutMillis != 1500 || recs[1].TimeoutMillis != 0 {
			t.Fatalf("%s: Pending = %+v, %v", when, recs, err)
		}
	}
	check(s, "written")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t), "reopened")
}

// testPaused: the paused set reads back as last committed, survives a
// reopen, and is replaced whole (an empty set pauses nothing).
func testPaused(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	if p, err := s.Paused(ctx); err != nil || !p.Empty() {
		t.Fatalf("fresh store: Paused = %+v, %v; want none", p, err)
	}
	want := task.Paused{Types: []string{"resize", "thumb"}, Classes: []messages.Class{messages.ClassLow}}
	commit(t, s, store.Batch{Paused: &want, Tasks: []task.Record{Task(1, messages.ClassLow)}})
	if p, err := s.Paused(ctx); err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("Paused = %+v, %v; want %+v", p, err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t)
	if p, err := s.Paused(ctx); err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("reopened: Paused = %+v, %v; want %+v", p, err, want)
	}
	commit(t, s, store.Batch{Paused: &task.Paused{}})
	if p, err := s.Paused(ctx); err != nil || !p.Empty() {
		t.Fatalf("after resuming all: Paused = %+v, %v; want none", p, err)
	}
}

func testPendingOrderPerClass(t *testing.T, open Opener) {
	s := open(t)
	// Out of order across and within batches.
	commit(t, s, store.Batch{Tasks: []task.Record{Task(9, messages.ClassNormal), Task(2, messages.ClassHigh), Task(5, messages.ClassNormal)}})
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal), Task(7, messages.ClassHigh), Task(300, messages.ClassNormal)}})
	commit(t, s, store.Batch{Tasks: []task.Record{Task(4, messages.ClassLow)}})
	for _, tc := range []struct {
		c     messages.Class
		after uint64
		limit int
		want  []uint64
	}{
		{messages.ClassNormal, 0, 100, []uint64{1, 5, 9, 300}},
		{messages.ClassNormal, 5, 100, []uint64{9, 300}},
		{messages.ClassNormal, 0, 2, []uint64{1, 5}},
		{messages.ClassNormal, 300, 100, []uint64{}},
		{messages.ClassHigh, 0, 100, []uint64{2, 7}},
		{messages.ClassLow, 0, 100, []uint64{4}},
		{messages.ClassLow, 0, 0, []uint64{}},
		{messages.ClassLow, 0, -1, []uint64{}},
		{messages.Class(7), 0, 100, []uint64{}},
		{messages.Class(255), 0, 100, []uint64{}},
		{messages.ClassNormal, ^uint64(0), 100, []uint64{}},
	} {
		if got := PendingIDs(t, s, tc.c, tc.after, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Pending(%v, after=%d, limit=%d) = %v, want %v", tc.c, tc.after, tc.limit, got, tc.want)
		}
	}
	recs, err := s.Pending(t.Context(), messages.ClassNormal, 4, 1)
	if err != nil || len(recs) != 1 || !reflect.DeepEqual(recs[0], Task(5, messages.ClassNormal)) {
		t.Errorf("Pending record = %+v, %v; want task 5", recs, err)
	}
}

func testResultsRemovePending(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassNormal), Task(3, messages.ClassNormal)}})
	r2 := Result(2, messages.ClassNormal, Base)
	r2.Error = "first attempt failed"
	commit(t, s, store.Batch{Results: []task.Result{r2}})
	if got := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(got, []uint64{1, 3}) {
		t.Errorf("pending after result = %v, want [1 3]", got)
	}
	if got, ok := result(t, s, 2); !ok || !reflect.DeepEqual(got, r2) {
		t.Errorf("Result(2) = %+v, %v; want %+v", got, ok, r2)
	}
	if _, ok := readRecord(t, s, 2); !ok {
		t.Errorf("task 2 record gone after its result; want kept until Sweep")
	}
	// A duplicate answered at intake: task and result in one batch.
	dup := Result(4, messages.ClassNormal, Base)
	dup.AliasOf, dup.Output = 2, nil
	commit(t, s, store.Batch{Tasks: []task.Record{Task(4, messages.ClassNormal)}, Results: []task.Result{dup}})
	if got := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(got, []uint64{1, 3}) {
		t.Errorf("pending after duplicate = %v, want [1 3]", got)
	}
	if got, ok := result(t, s, 4); !ok || !reflect.DeepEqual(got, dup) {
		t.Errorf("Result(4) = %+v, %v; want %+v", got, ok, dup)
	}
}

func testAttempts(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassNormal)}})
	commit(t, s, store.Batch{Attempts: []store.AttemptUpdate{{ID: 1, Attempts: 2}, {ID: 77, Attempts: 1}}})
	want := Task(1, messages.ClassNormal)
	want.Attempts = 2
	if got, _ := readRecord(t, s, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("task 1 after attempt = %+v, want %+v", got, want)
	}
	if _, ok := readRecord(t, s, 77); ok {
		t.Errorf("attempt update of unknown task 77 created a record")
	}
	commit(t, s, store.Batch{Attempts: []store.AttemptUpdate{{ID: 78, Attempts: 1}}}) // writes nothing at all
	if got, _ := readRecord(t, s, 2); got.Attempts != 0 {
		t.Errorf("task 2 attempts = %d, want 0", got.Attempts)
	}
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1, 2}) {
		t.Errorf("pending = %v, want [1 2]", ids)
	}
	// Task and its attempt count in one batch; the same id twice: last wins.
	commit(t, s, store.Batch{Tasks: []task.Record{Task(3, messages.ClassLow)},
		Attempts: []store.AttemptUpdate{{ID: 3, Attempts: 4}, {ID: 3, Attempts: 1}}})
	if got, ok := readRecord(t, s, 3); !ok || got.Attempts != 1 || got.Type != "resize" {
		t.Errorf("task 3 = %+v, %v; want attempts 1", got, ok)
	}
}

// testStarts records attempts as they start (Batch.Starts, one per grant):
// the counts read back through Task and Pending, survive a reopen, mix
// with failed-attempt updates, and leave with the task's result.
func testStarts(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassNormal), Task(3, messages.ClassNormal)}})
	commit(t, s, store.Batch{Starts: []store.AttemptUpdate{{ID: 1, Attempts: 1}, {ID: 2, Attempts: 1}, {ID: 77, Attempts: 1}}})
	// 1 fails and starts again; 2 finishes.
	commit(t, s, store.Batch{Attempts: []store.AttemptUpdate{{ID: 1, Attempts: 1}}})
	commit(t, s, store.Batch{Starts: []store.AttemptUpdate{{ID: 1, Attempts: 2}}})
	r2 := Result(2, messages.ClassNormal, Base)
	commit(t, s, store.Batch{Results: []task.Result{r2}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t)
	want := Task(1, messages.ClassNormal)
	want.Attempts = 2
	if got, _ := readRecord(t, s, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("task 1 after two starts = %+v, want %+v", got, want)
	}
	recs, err := s.Pending(t.Context(), messages.ClassNormal, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != 1 || recs[0].Attempts != 2 || recs[1].ID != 3 || recs[1].Attempts != 0 {
		t.Errorf("pending after reopen = %+v, want 1 (attempts 2) and 3 (attempts 0)", recs)
	}
	if got, ok := result(t, s, 2); !ok || !reflect.DeepEqual(got, r2) {
		t.Errorf("result 2 = %+v, %v", got, ok)
	}
	if _, ok := readRecord(t, s, 77); ok {
		t.Errorf("a start of unknown task 77 created a record")
	}
}

// testAsyncCallOrder queues writes with CommitAsync without waiting and
// checks they are applied in call order, including attempt updates of a task
// written by an earlier call.
func testAsyncCallOrder(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	var chans []<-chan error
	chans = append(chans, s.CommitAsync(ctx, &store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal)}}))
	chans = append(chans, s.CommitAsync(ctx, &store.Batch{Tasks: []task.Record{Task(2, messages.ClassNormal)}}))
	for i := int32(1); i <= 10; i++ {
		chans = append(chans, s.CommitAsync(ctx, &store.Batch{Attempts: []store.AttemptUpdate{{ID: 1, Attempts: i}, {ID: 2, Attempts: 10 * i}}}))
	}
	chans = append(chans, s.CommitAsync(ctx, &store.Batch{Results: []task.Result{Result(2, messages.ClassNormal, Base)}}))
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatalf("queued commit %d: %v", i, err)
		}
	}
	if got, _ := readRecord(t, s, 1); got.Attempts != 10 || string(got.Payload) != "payload-1" {
		t.Errorf("task 1 = %+v; want attempts 10 and its payload", got)
	}
	if got, _ := readRecord(t, s, 2); got.Attempts != 100 || string(got.Payload) != "payload-2" {
		t.Errorf("task 2 = %+v; want attempts 100 and its payload", got)
	}
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1}) {
		t.Errorf("pending = %v, want [1]", ids)
	}
}

// testDuplicateIDsInBatch: a batch naming a record twice keeps the later one,
// and rewriting a finished task makes it pending again.
func testDuplicateIDsInBatch(t *testing.T, open Opener) {
	s := open(t)
	a, b := Task(1, messages.ClassNormal), Task(1, messages.ClassNormal)
	b.Type = "second"
	ra, rb := Result(1, messages.ClassNormal, Base), Result(1, messages.ClassNormal, Base)
	rb.Output = []byte("second")
	commit(t, s, store.Batch{Tasks: []task.Record{a, b}, Results: []task.Result{ra, rb}})
	if got, _ := readRecord(t, s, 1); got.Type != "second" {
		t.Errorf("task 1 type = %q, want the later record's", got.Type)
	}
	if got, _ := result(t, s, 1); string(got.Output) != "second" {
		t.Errorf("result 1 output = %q, want the later record's", got.Output)
	}
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 10); len(ids) != 0 {
		t.Errorf("pending = %v, want none", ids)
	}
	commit(t, s, store.Batch{Tasks: []task.Record{a}})
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1}) {
		t.Errorf("pending after rewrite = %v, want [1]", ids)
	}
}

func testReopen(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal), Task(2, messages.ClassHigh), Task(3, messages.ClassNormal)}})
	commit(t, s, store.Batch{Results: []task.Result{Result(3, messages.ClassNormal, Base)}, Attempts: []store.AttemptUpdate{{ID: 1, Attempts: 2}}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t)
	if got, ok := readRecord(t, s, 1); !ok || got.Attempts != 2 {
		t.Errorf("task 1 after reopen = %+v, %v; want attempts 2", got, ok)
	}
	if got, ok := readRecord(t, s, 2); !ok || !reflect.DeepEqual(got, Task(2, messages.ClassHigh)) {
		t.Errorf("task 2 after reopen = %+v, %v", got, ok)
	}
	if got, ok := result(t, s, 3); !ok || !reflect.DeepEqual(got, Result(3, messages.ClassNormal, Base)) {
		t.Errorf("result 3 after reopen = %+v, %v", got, ok)
	}
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(ids, []uint64{1}) {
		t.Errorf("pending normal after reopen = %v, want [1]", ids)
	}
	if ids := PendingIDs(t, s, messages.ClassHigh, 0, 10); !reflect.DeepEqual(ids, []uint64{2}) {
		t.Errorf("pending high after reopen = %v, want [2]", ids)
	}
	if id := maxID(t, s); id != 3 {
		t.Errorf("MaxID after reopen = %d; want 3", id)
	}
}

func testMaxIDSurvivesSweep(t *testing.T, open Opener) {
	s := open(t)
	if id := maxID(t, s); id != 0 {
		t.Fatalf("MaxID of empty store = %d; want 0", id)
	}
	commit(t, s, store.Batch{Tasks: []task.Record{Task(10, messages.ClassNormal), Task(4, messages.ClassNormal)}})
	commit(t, s, store.Batch{Tasks: []task.Record{Task(7, messages.ClassNormal)}}) // lower than the max: no change
	if id := maxID(t, s); id != 10 {
		t.Fatalf("MaxID = %d, want 10", id)
	}
	commit(t, s, store.Batch{Results: []task.Result{
		Result(4, messages.ClassNormal, Base), Result(7, messages.ClassNormal, Base), Result(10, messages.ClassNormal, Base),
	}})
	if n, err := s.Sweep(t.Context(), Base.Add(time.Hour), 100); err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3", n, err)
	}
	for _, id := range []uint64{4, 7, 10} {
		if _, ok := readRecord(t, s, id); ok {
			t.Errorf("task %d survived Sweep", id)
		}
	}
	if id := maxID(t, s); id != 10 {
		t.Errorf("MaxID after Sweep = %d, want 10", id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if id := maxID(t, open(t)); id != 10 {
		t.Errorf("MaxID after Sweep and reopen = %d, want 10", id)
	}
}

func testSweep(t *testing.T, open Opener) {
	s := open(t)
	var b store.Batch
	for id := uint64(1); id <= 20; id++ {
		b.Tasks = append(b.Tasks, Task(id, messages.ClassNormal))
	}
	commit(t, s, b)
	b = store.Batch{}
	for id := uint64(1); id <= 15; id++ {
		fin := Base.Add(-time.Hour) // 1..10 finished long ago, 11..15 recently
		if id > 10 {
			fin = Base.Add(time.Hour)
		}
		b.Results = append(b.Results, Result(id, messages.ClassNormal, fin))
	}
	commit(t, s, b)
	n, err := s.Sweep(t.Context(), Base, 4)
	if err != nil || n != 4 {
		t.Fatalf("Sweep(limit 4) = %d, %v; want 4", n, err)
	}
	total := n
	for range 10 {
		n, err := s.Sweep(t.Context(), Base, 4)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		total += n
	}
	if total != 10 {
		t.Errorf("swept %d in all, want 10", total)
	}
	for id := uint64(1); id <= 20; id++ {
		_, hasTask := readRecord(t, s, id)
		_, hasResult := result(t, s, id)
		wantTask, wantResult := id > 10, id > 10 && id <= 15
		if hasTask != wantTask || hasResult != wantResult {
			t.Errorf("task %d: record %v, result %v; want %v, %v", id, hasTask, hasResult, wantTask, wantResult)
		}
	}
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 100); !reflect.DeepEqual(ids, []uint64{16, 17, 18, 19, 20}) {
		t.Errorf("pending after Sweep = %v (unfinished tasks are never swept)", ids)
	}
	if n, err := s.Sweep(t.Context(), Base, 0); n != 0 || err != nil {
		t.Errorf("Sweep(limit 0) = %d, %v", n, err)
	}
}

// testSweepNotStarved: results not yet expired at low ids do not keep
// repeated Sweeps from the expired ones behind them.
func testSweepNotStarved(t *testing.T, open Opener) {
	s := open(t)
	var b store.Batch
	for id := uint64(1); id <= 12; id++ {
		b.Tasks = append(b.Tasks, Task(id, messages.ClassNormal))
		fin := Base.Add(-time.Hour)
		if id <= 8 {
			fin = Base.Add(time.Hour) // low ids that finished late
		}
		b.Results = append(b.Results, Result(id, messages.ClassNormal, fin))
	}
	commit(t, s, b)
	total := 0
	for range 6 {
		n, err := s.Sweep(t.Context(), Base, 1)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 4 {
		t.Errorf("swept %d, want the 4 expired results 9..12", total)
	}
	for id := uint64(1); id <= 12; id++ {
		if _, ok := result(t, s, id); ok != (id <= 8) {
			t.Errorf("result %d present = %v, want %v", id, ok, id <= 8)
		}
	}
}

func testResultsSince(t *testing.T, open Opener) {
	s := open(t)
	var b store.Batch
	for id := uint64(1); id <= 6; id++ {
		b.Tasks = append(b.Tasks, Task(id, messages.ClassNormal))
		// Finish times not in id order.
		b.Results = append(b.Results, Result(id, messages.ClassNormal, Base.Add(time.Duration(7-id)*time.Minute)))
	}
	commit(t, s, b)
	var got []uint64
	err := s.Results(t.Context(), Base.Add(3*time.Minute), func(r task.Result) error {
		got = append(got, r.ID)
		return nil
	})
	if err != nil || !reflect.DeepEqual(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("Results since +3m = %v, %v; want [1 2 3 4]", got, err)
	}
	stop := errors.New("stop")
	calls := 0
	err = s.Results(t.Context(), time.Time{}, func(task.Result) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Results with failing fn = %v after %d calls; want stop after 1", err, calls)
	}
}

func testConcurrentCommits(t *testing.T, open Opener) {
	s := open(t)
	const writers, perWriter = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := uint64(w*perWriter + i + 1)
				b := store.Batch{Tasks: []task.Record{Task(id, messages.Class(id%messages.NumClasses))}}
				if err := s.Commit(t.Context(), &b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Commit: %v", err)
	}
	total := 0
	for c := range messages.Class(messages.NumClasses) {
		ids := PendingIDs(t, s, c, 0, 10*writers*perWriter)
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("pending %v not ascending: %v", c, ids)
			}
		}
		total += len(ids)
	}
	if total != writers*perWriter {
		t.Errorf("pending tasks = %d, want %d", total, writers*perWriter)
	}
	if id := maxID(t, s); id != writers*perWriter {
		t.Errorf("MaxID = %d, want %d", id, writers*perWriter)
	}
}

func testContextCancelled(t *testing.T, open Opener) {
	s := open(t)
	done, cancel := context.WithCancel(t.Context())
	cancel()
	b := &store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal)}}
	_, _, errTask := s.Task(done, 1)
	_, _, errResult := s.Result(done, 1)
	_, errPending := s.Pending(done, messages.ClassNormal, 0, 1)
	_, errMax := s.MaxID(done)
	_, errSweep := s.Sweep(done, Base, 1)
	for name, err := range map[string]error{
		"Commit":      s.Commit(done, b),
		"CommitAsync": <-s.CommitAsync(done, b),
		"Task":        errTask,
		"Result":      errResult,
		"Pending":     errPending,
		"Results":     s.Results(done, time.Time{}, func(task.Result) error { return nil }),
		"MaxID":       errMax,
		"Sweep":       errSweep,
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled ctx = %v, want context.Canceled", name, err)
		}
	}
	if _, ok := readRecord(t, s, 1); ok {
		t.Errorf("task 1 written by a Commit with a cancelled ctx")
	}
	if id := maxID(t, s); id != 0 {
		t.Errorf("MaxID = %d, want 0", id)
	}
}

func testClosed(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, store.Batch{Tasks: []task.Record{Task(1, messages.ClassNormal)}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	b := &store.Batch{Tasks: []task.Record{Task(2, messages.ClassNormal)}}
	_, _, errTask := s.Task(ctx, 1)
	_, _, errResult := s.Result(ctx, 1)
	_, errPending := s.Pending(ctx, messages.ClassNormal, 0, 1)
	_, errMax := s.MaxID(ctx)
	_, errSweep := s.Sweep(ctx, Base, 1)
	for name, err := range map[string]error{
		"Commit":       s.Commit(ctx, b),
		"Commit empty": s.Commit(ctx, &store.Batch{}),
		"CommitAsync":  <-s.CommitAsync(ctx, b),
		"Task":         errTask,
		"Result":       errResult,
		"Pending":      errPending,
		"Results":      s.Results(ctx, time.Time{}, func(task.Result) error { return nil }),
		"MaxID":        errMax,
		"Sweep":        errSweep,
		"Close":        s.Close(),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// testCloseDrainsAsync: batches queued with CommitAsync before Close are
// written, acknowledged, and there after reopening.
func testCloseDrainsAsync(t *testing.T, open Opener) {
	s := open(t)
	var chans []<-chan error
	for id := uint64(1); id <= 20; id++ {
		chans = append(chans, s.CommitAsync(t.Context(), &store.Batch{Tasks: []task.Record{Task(id, messages.ClassNormal)}}))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Errorf("commit %d queued before Close: %v", i+1, err)
		}
	}
	s = open(t)
	if ids := PendingIDs(t, s, messages.ClassNormal, 0, 100); len(ids) != 20 {
		t.Errorf("pending after reopen = %v, want 1..20", ids)
	}
}

// testFullIDRange: ids use all 64 bits (cluster ids carry a node tag in the
// top 16), and order is unsigned order.
func testFullIDRange(t *testing.T, open Opener) {
	s := open(t)
	ids := []uint64{1<<63 + 5, 1, math.MaxUint64 - 1, 1<<63 - 1, 0xbeef << 48}
	var b store.Batch
	for _, id := range ids {
		b.Tasks = append(b.Tasks, Task(id, messages.ClassNormal))
	}
	commit(t, s, b)
	want := []uint64{1, 1<<63 - 1, 1<<63 + 5, 0xbeef << 48, math.MaxUint64 - 1}
	if got := PendingIDs(t, s, messages.ClassNormal, 0, 10); !reflect.DeepEqual(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	if got := PendingIDs(t, s, messages.ClassNormal, 1<<63, 10); !reflect.DeepEqual(got, want[2:]) {
		t.Errorf("pending after 2^63 = %v, want %v", got, want[2:])
	}
	if id := maxID(t, s); id != math.MaxUint64-1 {
		t.Errorf("MaxID = %d, want 2^64-2", id)
	}
	r := Result(0xbeef<<48, messages.ClassNormal, Base)
	r.AliasOf = math.MaxUint64 - 1
	commit(t, s, store.Batch{Results: []task.Result{r}, Attempts: []store.AttemptUpdate{{ID: 1<<63 + 5, Attempts: 2}}})
	if got, ok := result(t, s, 0xbeef<<48); !ok || !reflect.DeepEqual(got, r) {
		t.Errorf("Result = %+v, %v; want %+v", got, ok, r)
	}
	if got, _ := readRecord(t, s, 1<<63+5); got.Attempts != 2 || got.ID != 1<<63+5 {
		t.Errorf("task 2^63+5 = %+v; want attempts 2", got)
	}
}
