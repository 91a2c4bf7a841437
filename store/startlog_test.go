package store

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func openStarts(t *testing.T, path string) (*StartLog, []AttemptUpdate) {
	t.Helper()
	l, prev, err := OpenStartLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, prev
}

// What a StartLog wrote is read back by the next open (the largest count
// per task, in first-seen order), without Close: the process may die.
func TestStartLogSurvivesTheProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "starts.log")
	l, prev := openStarts(t, path)
	if len(prev) != 0 {
		t.Fatalf("fresh log held %v", prev)
	}
	for _, b := range [][]AttemptUpdate{{{1, 1}, {2, 1}}, {{1, 2}}, {{3, 1}, {2, 1}}} {
		if err := l.Record(b); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: as after SIGKILL.
	_, prev = openStarts(t, path)
	if want := []AttemptUpdate{{1, 2}, {2, 1}, {3, 1}}; !slices.Equal(prev, want) {
		t.Fatalf("reopened: %v, want %v", prev, want)
	}
}

// A torn last frame (a machine crash mid-write) ends the read; the frames
// before it count.
func TestStartLogTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "starts.log")
	l, _ := openStarts(t, path)
	if err := l.Record([]AttemptUpdate{{7, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record([]AttemptUpdate{{8, 1}, {9, 1}}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	raw, _ := os.ReadFile(path)
	for _, cut := range []int{1, 5, startFrameHead + 1} {
		if err := os.WriteFile(path, raw[:len(raw)-cut], 0o644); err != nil {
			t.Fatal(err)
		}
		l, prev := openStarts(t, path)
		_ = l.Close()
		if want := []AttemptUpdate{{7, 1}}; !slices.Equal(prev, want) {
			t.Fatalf("cut %d: %v, want %v", cut, prev, want)
		}
	}
	flipped := slices.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	_ = os.WriteFile(path, flipped, 0o644)
	l, prev := openStarts(t, path)
	_ = l.Close()
	if want := []AttemptUpdate{{7, 1}}; !slices.Equal(prev, want) {
		t.Fatalf("corrupt last frame: %v, want %v", prev, want)
	}
}

// The file is rewritten from the starts of unfinished tasks once it has
// grown past startLogCompactBytes, so it stays small; Reset empties it.
func TestStartLogCompactsAndResets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "starts.log")
	l, _ := openStarts(t, path)
	if err := l.Record([]AttemptUpdate{{1, 3}}); err != nil { // never finishes
		t.Fatal(err)
	}
	batch := make([]AttemptUpdate, 1000)
	for id := uint64(2); id < 2+600_000; id += uint64(len(batch)) {
		for i := range batch {
			batch[i] = AttemptUpdate{ID: id + uint64(i), Attempts: 1}
		}
		if err := l.Record(batch); err != nil {
			t.Fatal(err)
		}
		ids := make([]uint64, len(batch))
		for i := range batch {
			ids[i] = batch[i].ID
		}
		l.Done(ids)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > startLogCompactBytes+startFrameHead+1000*startEntryLen || l.Live() != 1 {
		t.Fatalf("after 600,000 finished starts: file %d bytes, %d live", fi.Size(), l.Live())
	}
	_, prev := openStarts(t, path)
	if !slices.Contains(prev, AttemptUpdate{1, 3}) {
		t.Fatalf("the unfinished task's start was lost in compaction: %d starts", len(prev))
	}
	if err := l.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, prev = openStarts(t, path); len(prev) != 0 {
		t.Fatalf("after Reset: %v", prev)
	}
}
