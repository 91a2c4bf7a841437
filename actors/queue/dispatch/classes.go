package dispatch

import (
	"container/heap"
	"slices"

	"github.com/shoalrt/shoal/messages"
)

// classQueues is the queued work: one priority queue per class, the
// weighted schedule and aging rule that pick a class, and the tasks
// waiting for a retry. It knows nothing of executors: a pick takes a
// predicate saying which tasks the executor at hand can run.
type classQueues struct {
	queues     [messages.NumClasses]queue
	delayed    delayed
	schedule   []messages.Class
	rr         int
	agingAfter int64 // ns
	scanLimit  int
}

func newClassQueues(cfg Config) classQueues {
	return classQueues{schedule: interleave(cfg.Weights), // H N L H N H N H H H for 6:3:1
		agingAfter: int64(cfg.AgingAfter), scanLimit: cfg.ScanLimit}
}

func interleave(w [messages.NumClasses]int) []messages.Class {
	var out []messages.Class
	left := w
	for {
		added := false
		for c := range left {
			if left[c] > 0 {
				out = append(out, messages.Class(c))
				left[c]--
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// push queues e in its class.
func (q *classQueues) push(e *entry) { q.queues[e.rec.Class].push(e) }

// next pops the next task fits accepts: an aged class first, else the
// weighted schedule. Tasks it refuses are skipped (up to scanLimit per
// class) and stay queued; a class found with nothing fitting is marked in
// blocked for the rest of the grant.
func (q *classQueues) next(ts int64, blocked *[messages.NumClasses]bool, fits func(*entry) bool) *entry {
	for {
		c := q.pickClass(ts, blocked)
		if c < 0 {
			return nil
		}
		if e := q.popFor(messages.Class(c), fits); e != nil {
			return e
		}
		blocked[c] = true
	}
}

func (q *classQueues) pickClass(ts int64, blocked *[messages.NumClasses]bool) int {
	best, oldest := -1, int64(0)
	for c := range q.queues {
		if blocked[c] {
			continue
		}
		if h := q.queues[c].peek(); h != nil && ts-h.enqueued > q.agingAfter && (best < 0 || h.enqueued < oldest) {
			best, oldest = c, h.enqueued
		}
	}
	if best >= 0 {
		return best
	}
	for i := range q.schedule {
		c := q.schedule[(q.rr+i)%len(q.schedule)]
		if !blocked[c] && q.queues[c].Len() > 0 {
			q.rr = (q.rr + i + 1) % len(q.schedule)
			return int(c)
		}
	}
	return -1
}

func (q *classQueues) popFor(c messages.Class, fits func(*entry) bool) *entry {
	h := &q.queues[c]
	var skipped []*entry
	defer func() {
		for _, e := range skipped {
			h.push(e)
		}
	}()
	for h.Len() > 0 && len(skipped) < q.scanLimit {
		e := h.pop()
		if fits(e) {
			return e
		}
		skipped = append(skipped, e)
	}
	return nil
}

// anyFor reports whether a queued task (among the first scanLimit of each
// class) is accepted by fits.
func (q *classQueues) anyFor(fits func(*entry) bool) bool {
	for c := range q.queues {
		h := q.queues[c]
		for i := 0; i < len(h) && i < q.scanLimit; i++ {
			if fits(h[i]) {
				return true
			}
		}
	}
	return false
}

// queued is the number of queued tasks over all classes.
func (q *classQueues) queued() int {
	n := 0
	for c := range q.queues {
		n += q.queues[c].Len()
	}
	return n
}

// remove takes id out of the queues (nil if it is not queued).
func (q *classQueues) remove(id uint64) *entry {
	for c := range q.queues {
		if e, ok := q.queues[c].remove(id); ok {
			return e
		}
	}
	return nil
}

// has reports whether id is queued.
func (q *classQueues) has(id uint64) bool {
	for c := range q.queues {
		if slices.ContainsFunc(q.queues[c], func(e *entry) bool { return e.rec.ID == id }) {
			return true
		}
	}
	return false
}

// retry queues e again at ts (unix ns).
func (q *classQueues) retry(at int64, e *entry) { heap.Push(&q.delayed, &retry{at: at, e: e}) }

// due pops the next retry due by ts (nil if none).
func (q *classQueues) due(ts int64) *entry {
	if q.delayed.Len() == 0 || q.delayed[0].at > ts {
		return nil
	}
	return heap.Pop(&q.delayed).(*retry).e
}

// retrying reports whether id waits for a retry.
func (q *classQueues) retrying(id uint64) bool {
	return slices.ContainsFunc(q.delayed, func(r *retry) bool { return r.e.rec.ID == id })
}

// removeRetry takes id off the retry list (nil if it is not there).
func (q *classQueues) removeRetry(id uint64) *entry {
	if i := slices.IndexFunc(q.delayed, func(r *retry) bool { return r.e.rec.ID == id }); i >= 0 {
		return heap.Remove(&q.delayed, i).(*retry).e
	}
	return nil
}
