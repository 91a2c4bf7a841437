package dispatch

import (
	"container/heap"

	"github.com/shoalrt/shoal/task"
)

// entry is a queued task.
type entry struct {
	rec      task.Record
	enqueued int64 // unix ns, for aging
	attempt  int32 // attempts already failed
	// holdsPlace: the task came from the pump and occupies one of the
	// class's Capacity places (a credit); retries re-enter without one.
	holdsPlace bool
	// stolen: the task belongs to another node (work stealing, stolen.go);
	// its results go back to that node instead of to dedupe.
	stolen bool
	// shape is the canonical text of its requirements ("" if none) and
	// bucket its size bucket (placement.go).
	shape  string
	bucket int8
}

// queue is one class's queue: highest priority first, then oldest.
type queue []*entry

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].rec.Priority != q[j].rec.Priority {
		return q[i].rec.Priority > q[j].rec.Priority
	}
	return q[i].rec.ID < q[j].rec.ID
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*entry)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

func (q *queue) push(e *entry) { heap.Push(q, e) }
func (q *queue) pop() *entry   { return heap.Pop(q).(*entry) }
func (q queue) peek() *entry {
	if len(q) == 0 {
		return nil
	}
	return q[0]
}

// remove deletes the entry for id (linear; cancellation is rare).
func (q *queue) remove(id uint64) (*entry, bool) {
	for i, e := range *q {
		if e.rec.ID == id {
			heap.Remove(q, i)
			return e, true
		}
	}
	return nil, false
}

// delayed holds tasks waiting for a retry, earliest first.
type delayed []*retry

type retry struct {
	at int64
	e  *entry
}

func (d delayed) Len() int           { return len(d) }
func (d delayed) Less(i, j int) bool { return d[i].at < d[j].at }
func (d delayed) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *delayed) Push(x any)        { *d = append(*d, x.(*retry)) }
func (d *delayed) Pop() any {
	old := *d
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	return r
}
