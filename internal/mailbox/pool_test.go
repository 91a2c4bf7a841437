package mailbox

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// Every scheduled function runs exactly once, whether a parked goroutine or
// a fresh one takes it, including functions that block until others ran
// (a bounded pool must not make them wait for each other).
func TestPoolRunsEverythingOnce(t *testing.T) {
	p := NewPool(0, 2)
	const n = 200
	var ran [n]atomic.Int32
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Add(n)
	for i := range n {
		p.Schedule(func() {
			defer wg.Done()
			ran[i].Add(1)
			if i < 10 {
				<-release // ten blockers must not hold up the rest
			}
		})
	}
	done := make(chan struct{})
	go func() {
		for i := 10; i < n; i++ {
			for ran[i].Load() == 0 {
				select {
				case <-done:
					return
				default:
				}
				yield()
			}
		}
		close(release)
	}()
	wg.Wait()
	close(done)
	for i := range n {
		if got := ran[i].Load(); got != 1 {
			t.Fatalf("function %d ran %d times", i, got)
		}
	}
	if got := p.parked.Load(); got > 2 {
		t.Fatalf("%d goroutines parked, limit 2", got)
	}
	p.Close()
	if got := p.parked.Load(); got != 0 {
		t.Fatalf("%d goroutines left after Close", got)
	}
	// After Close, Schedule still runs functions (on fresh goroutines).
	ch := make(chan struct{})
	p.Schedule(func() { close(ch) })
	<-ch
}

// Actors on the pool receive every message in order.
func TestPoolWithActors(t *testing.T) {
	p := NewPool(0, 4)
	defer p.Close()
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	const n = 10000
	got := make(chan int, n)
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if v, ok := ctx.Message().(int); ok {
			got <- v
		}
	}, actor.WithDispatcher(p))
	pids := []*actor.PID{sys.Root.Spawn(props), sys.Root.Spawn(props)}
	for i := range n {
		sys.Root.Send(pids[0], i)
	}
	for i := range n {
		if v := <-got; v != i {
			t.Fatalf("message %d arrived as %d", i, v)
		}
	}
	for _, pid := range pids {
		_ = sys.Root.StopFuture(pid).Wait()
	}
}

func yield() { runtime.Gosched() }
