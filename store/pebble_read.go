package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// ctxCheckEvery is how many records a scan reads between checks of its ctx.
const ctxCheckEvery = 256

// Task returns the record of task id.
func (p *Pebble) Task(ctx context.Context, id uint64) (task.Record, bool, error) {
	if err := p.acquire(); err != nil {
		return task.Record{}, false, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Record{}, false, err
	}
	k := taskKey(id)
	v, closer, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return task.Record{}, false, nil
	}
	if err != nil {
		return task.Record{}, false, fmt.Errorf("store: read %s: %w", keyString(k), err)
	}
	defer closer.Close()
	rec, err := decodeTask(k, v)
	if err != nil {
		return task.Record{}, false, err
	}
	var sk [startKeyLen]byte
	putStartKey(sk[:], id)
	sv, sc, err := p.db.Get(sk[:])
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return task.Record{}, false, fmt.Errorf("store: read %s: %w", keyString(sk[:]), err)
	default:
		rec.Attempts = max(rec.Attempts, startCount(sv))
		sc.Close()
	}
	return rec, true, nil
}

// startCount decodes an s/ value (attempts started).
func startCount(v []byte) int32 {
	if len(v) != 4 {
		return 0
	}
	return int32(min(binary.BigEndian.Uint32(v), math.MaxInt32))
}

// Result returns the terminal result of task id.
func (p *Pebble) Result(ctx context.Context, id uint64) (task.Result, bool, error) {
	if err := p.acquire(); err != nil {
		return task.Result{}, false, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Result{}, false, err
	}
	k := resultKey(id)
	v, closer, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return task.Result{}, false, nil
	}
	if err != nil {
		return task.Result{}, false, fmt.Errorf("store: read %s: %w", keyString(k), err)
	}
	defer closer.Close()
	rec, err := decodeResult(k, v)
	if err != nil {
		return task.Result{}, false, err
	}
	return rec, true, nil
}

// Pending returns up to limit unfinished tasks of class c with id > after, in
// ascending id order, read from one consistent snapshot. A pending entry
// whose task record is missing (which a correct store never has) is logged
// and skipped.
//
// It walks the class's p/ entries and, alongside, the t/ records with a
// second iterator that only seeks forward: both are in id order, so each
// task record is a short step from the previous one and each block is read
// once, instead of a point lookup (table iterators, index and data blocks)
// per id.
func (p *Pebble) Pending(ctx context.Context, c messages.Class, after uint64, limit int) ([]task.Record, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 || after == math.MaxUint64 {
		return nil, nil
	}
	snap := p.db.NewSnapshot()
	defer snap.Close()
	pit, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: pendingKey(c, after+1),
		UpperBound: prefixEnd(pendingClassPrefix(c)),
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	defer pit.Close()
	if !pit.First() {
		if err := pit.Error(); err != nil {
			return nil, fmt.Errorf("store: pending scan: %w", err)
		}
		return nil, nil
	}
	first, _ := idOf(pit.Key())
	tit, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: taskKey(first),
		UpperBound: prefixEnd(taskPrefix),
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	defer tit.Close()
	// Attempts started (s/, Batch.Starts) are merged the same way: only
	// tasks leased and not finished have one.
	sit, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: startKey(first),
		UpperBound: prefixEnd(startPrefix),
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	defer sit.Close()
	var sk [startKeyLen]byte
	svalid := sit.First()

	out := make([]task.Record, 0, min(limit, 1024))
	var dec recordDecoder
	var k [taskKeyLen]byte
	n := 0
	tvalid := tit.First()
	for valid := true; valid && len(out) < limit; valid = pit.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		id, _ := idOf(pit.Key())
		putTaskKey(k[:], id)
		// A forward SeekGE after a SeekGE lets Pebble step from where the
		// iterator is, without reloading its blocks (TrySeekUsingNext); a
		// Next in between would cost that. No need when it is there already.
		if !tvalid || bytes.Compare(tit.Key(), k[:]) < 0 {
			tvalid = tit.SeekGE(k[:])
		}
		if !tvalid || !bytes.Equal(tit.Key(), k[:]) {
			if err := tit.Error(); err != nil {
				return nil, fmt.Errorf("store: read %s: %w", keyString(k[:]), err)
			}
			p.log.Warn("pending entry without task record skipped", "task_id", id, "class", c.String())
			continue
		}
		out = append(out, task.Record{})
		rec := &out[len(out)-1]
		if err := dec.task(k[:], tit.Value(), rec); err != nil {
			return nil, err
		}
		putStartKey(sk[:], id)
		if svalid && bytes.Compare(sit.Key(), sk[:]) < 0 {
			svalid = sit.SeekGE(sk[:])
		}
		if svalid && bytes.Equal(sit.Key(), sk[:]) {
			rec.Attempts = max(rec.Attempts, startCount(sit.Value()))
		}
	}
	if err := sit.Error(); err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	if err := pit.Error(); err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	return out, nil
}

// Results calls fn, in ascending id order, for every result finished at or
// after since. It decodes every stored result, so it costs a full scan of r/;
// it is meant for start-up. An error from fn stops the scan and is returned
// as is.
func (p *Pebble) Results(ctx context.Context, since time.Time, fn func(task.Result) error) error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return err
	}
	sinceNs := since.UnixNano()
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: resultPrefix, UpperBound: prefixEnd(resultPrefix)})
	if err != nil {
		return fmt.Errorf("store: results scan: %w", err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := decodeResult(it.Key(), it.Value())
		if err != nil {
			return err
		}
		if rec.FinishedAt < sinceNs {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: results scan: %w", err)
	}
	return nil
}

// MaxID returns the largest task id ever committed, 0 if none. Sweep never
// lowers it.
func (p *Pebble) MaxID(ctx context.Context) (uint64, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return readMaxID(p.db)
}

func readMaxID(db *pebble.DB) (uint64, error) {
	v, closer, err := db.Get(maxIDKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read %s: %w", maxIDKey, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("store: corrupt %s: %d bytes, want 8", maxIDKey, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Sweep deletes the task and result records of up to limit tasks that
// finished before cutoff, and returns how many it deleted.
//
// Ids are handed out in submission order, so r/ is roughly ordered by finish
// time and expired results sit at the front. Sweep scans r/ in id order and
// stops after limit deletions or after reading limit*4 results, which keeps
// one call cheap. A scan that stops early leaves a cursor where it stopped and
// the next Sweep resumes there, wrapping to the start at the end of r/: a
// run of late-finishing low ids (results not yet expired) at the front can
// thus not starve the expired results behind it. The cursor lives in memory;
// after a restart sweeping starts from the front again.
func (p *Pebble) Sweep(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	ids, next, err := p.sweepScan(ctx, cutoff.UnixNano(), limit, p.sweepFrom)
	if err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		if err := p.writeSweep(ctx, ids); err != nil {
			return 0, err
		}
		p.log.Debug("swept results", "count", len(ids), "cutoff", cutoff)
	}
	p.sweepFrom = next
	return len(ids), nil
}

// sweepScan collects up to limit ids of results finished before cutoffNs,
// reading at most limit*4 results: first from id `from` to the end of r/,
// then from the start up to `from`. It returns the id where the next scan
// should start (0 when it went all the way round).
func (p *Pebble) sweepScan(ctx context.Context, cutoffNs int64, limit int, from uint64) ([]uint64, uint64, error) {
	budget := limit * 4
	if budget/4 != limit { // overflow
		budget = math.MaxInt
	}
	var ids []uint64
	scanned := 0
	// scan reads [lo, hi) and reports whether it stopped early, and where.
	scan := func(lo, hi []byte) (stopped bool, next uint64, err error) {
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return false, 0, fmt.Errorf("store: sweep scan: %w", err)
		}
		defer it.Close()
		for valid := it.First(); valid; valid = it.Next() {
			if len(ids) >= limit || scanned >= budget {
				id, _ := idOf(it.Key())
				return true, id, nil
			}
			if scanned++; scanned%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return false, 0, err
				}
			}
			rec, err := decodeResult(it.Key(), it.Value())
			if err != nil {
				return false, 0, err
			}
			if rec.FinishedAt < cutoffNs {
				id, _ := idOf(it.Key())
				ids = append(ids, id)
			}
		}
		return false, 0, it.Error()
	}
	end := prefixEnd(resultPrefix)
	stopped, next, err := scan(resultKey(from), end)
	if err != nil || stopped {
		return ids, next, err
	}
	if from > 0 {
		stopped, next, err = scan(resultPrefix, resultKey(from))
		if err != nil || stopped {
			return ids, next, err
		}
	}
	return ids, 0, nil
}

// Paused returns the stored paused set (m/paused), none if absent.
func (p *Pebble) Paused(ctx context.Context) (task.Paused, error) {
	if err := p.acquire(); err != nil {
		return task.Paused{}, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Paused{}, err
	}
	v, closer, err := p.db.Get(pausedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return task.Paused{}, nil
	}
	if err != nil {
		return task.Paused{}, fmt.Errorf("store: read %s: %w", pausedKey, err)
	}
	defer closer.Close()
	return decodePaused(v)
}

// decodePaused reads a stored paused set; corrupt input is an error.
func decodePaused(v []byte) (task.Paused, error) {
	var out task.Paused
	if err := msgpack.Unmarshal(v, &out); err != nil {
		return task.Paused{}, fmt.Errorf("store: corrupt paused set: %w", err)
	}
	for _, c := range out.Classes {
		if c >= messages.NumClasses {
			return task.Paused{}, fmt.Errorf("store: corrupt paused set: class %d", c)
		}
	}
	return out, nil
}
