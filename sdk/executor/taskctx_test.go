package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Done never closed", what)
	}
}

type key struct{}

// A task context is canceled by a revoke (Done asked before or after), by
// the executor's base ending, and passes values and child contexts on.
func TestTaskCtx(t *testing.T) {
	base, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer stop()

	c := newTaskCtx(base)
	if c.Err() != nil || c.Value(key{}) != "v" {
		t.Fatalf("fresh: err %v, value %v", c.Err(), c.Value(key{}))
	}
	done := c.Done()
	child, cancelChild := context.WithTimeout(c, time.Hour)
	defer cancelChild()
	if closed(done) || closed(child.Done()) {
		t.Fatal("done before any cancel")
	}
	c.cancel(context.Canceled)
	if !closed(done) || !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("revoked: closed %v, err %v", closed(done), c.Err())
	}
	waitClosed(t, child.Done(), "child of a revoked task")
	if base.Err() != nil {
		t.Fatal("revoking a task canceled the base")
	}

	late := newTaskCtx(base)
	late.cancel(context.Canceled)
	if !closed(late.Done()) {
		t.Fatal("Done asked after the revoke is not closed")
	}

	watching, quiet := newTaskCtx(base), newTaskCtx(base)
	d := watching.Done()
	stop()
	waitClosed(t, d, "base ended")
	if !errors.Is(watching.Err(), context.Canceled) || !errors.Is(quiet.Err(), context.Canceled) {
		t.Fatalf("base ended: errs %v, %v", watching.Err(), quiet.Err())
	}
	waitClosed(t, quiet.Done(), "Done asked after the base ended")
}

// release after the handler returned stops the watch on the base.
func TestTaskCtxRelease(t *testing.T) {
	base, stop := context.WithCancel(context.Background())
	defer stop()
	c := newTaskCtx(base)
	d := c.Done()
	c.release()
	if !closed(d) || c.stop == nil || c.stop() {
		t.Fatal("release did not close Done or left the base watch registered")
	}
}
