package group

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupBatchesConcurrentCalls(t *testing.T) {
	var batches, maxBatch atomic.Int64
	g := &Group[int, int]{Max: 64, Do: func(reqs []int) ([]int, error) {
		batches.Add(1)
		if n := int64(len(reqs)); n > maxBatch.Load() {
			maxBatch.Store(n)
		}
		time.Sleep(time.Millisecond) // a write takes time: calls pile up meanwhile
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 2
		}
		return out, nil
	}}
	var wg sync.WaitGroup
	for i := range 2000 {
		wg.Go(func() {
			got, err := g.Call(i)
			if err != nil || got != 2*i {
				t.Errorf("Call(%d) = %d, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if b := batches.Load(); b >= 2000 || maxBatch.Load() > 64 {
		t.Fatalf("%d batches for 2000 calls, largest %d (Max 64)", b, maxBatch.Load())
	}
	t.Logf("%d batches, largest %d", batches.Load(), maxBatch.Load())
}

func TestGroupError(t *testing.T) {
	boom := errors.New("boom")
	var fail atomic.Bool
	fail.Store(true)
	g := &Group[int, int]{Do: func(r []int) ([]int, error) {
		if fail.Load() {
			return nil, boom
		}
		return r, nil
	}}
	if _, err := g.Call(1); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	fail.Store(false) // the group is usable after an error
	if v, err := g.Call(7); err != nil || v != 7 {
		t.Fatalf("after an error: %d, %v", v, err)
	}
}
