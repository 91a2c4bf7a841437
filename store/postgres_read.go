package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// pgRow is a pgx.Row or pgx.Rows positioned on a row.
type pgRow interface{ Scan(dest ...any) error }

func scanTask(row pgRow, rec *task.Record) error {
	var (
		id              int64
		class           int16
		digest          []byte
		req             map[string]string
		payload         []byte
		typ             string
		prio, max, atts int32
		submitted       int64
		size            *float64
		pin             *string
		timeout         *int64
	)
	if err := row.Scan(&id, &typ, &payload, &prio, &class, &digest, &req, &max, &atts, &submitted, &size, &pin, &timeout); err != nil {
		return err
	}
	if len(digest) != len(rec.Digest) {
		return fmt.Errorf("store: task %d: digest of %d bytes, want %d", fromPgID(id), len(digest), len(rec.Digest))
	}
	*rec = task.Record{ID: fromPgID(id), Type: typ, Payload: payload, Priority: prio, Class: messages.Class(class),
		Requirements: req, MaxAttempts: max, Attempts: atts, SubmittedAt: submitted}
	copy(rec.Digest[:], digest)
	if timeout != nil {
		rec.TimeoutMillis = *timeout
	}
	if len(rec.Requirements) == 0 {
		rec.Requirements = nil
	}
	if size == nil && pin == nil {
		rec.DerivePlacement() // a row of schema version 1
	} else {
		if size != nil {
			rec.Size = *size
		}
		if pin != nil {
			rec.Pin = *pin
		}
	}
	return nil
}

func scanResult(row pgRow, rec *task.Result) error {
	var (
		id, alias, finished int64
		class, state        int16
		digest, out         []byte
		errText             string
		atts                int32
	)
	if err := row.Scan(&id, &class, &digest, &state, &out, &errText, &atts, &alias, &finished); err != nil {
		return err
	}
	if len(digest) != len(rec.Digest) {
		return fmt.Errorf("store: result %d: digest of %d bytes, want %d", fromPgID(id), len(digest), len(rec.Digest))
	}
	*rec = task.Result{ID: fromPgID(id), Class: messages.Class(class), State: messages.TaskState(state), Output: out,
		Error: errText, Attempts: atts, AliasOf: fromPgID(alias), FinishedAt: finished}
	copy(rec.Digest[:], digest)
	if len(rec.Output) == 0 {
		rec.Output = nil
	}
	return nil
}

// Task returns the record of task id.
func (p *Postgres) Task(ctx context.Context, id uint64) (task.Record, bool, error) {
	if err := p.acquire(); err != nil {
		return task.Record{}, false, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Record{}, false, err
	}
	var rec task.Record
	err := scanTask(p.pool.QueryRow(ctx, p.sql.task, pgID(id)), &rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return task.Record{}, false, nil
	}
	if err != nil {
		return task.Record{}, false, fmt.Errorf("store: read task %d: %w", id, err)
	}
	return rec, true, nil
}

// Result returns the terminal result of task id.
func (p *Postgres) Result(ctx context.Context, id uint64) (task.Result, bool, error) {
	if err := p.acquire(); err != nil {
		return task.Result{}, false, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Result{}, false, err
	}
	var rec task.Result
	err := scanResult(p.pool.QueryRow(ctx, p.sql.result, pgID(id)), &rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return task.Result{}, false, nil
	}
	if err != nil {
		return task.Result{}, false, fmt.Errorf("store: read result %d: %w", id, err)
	}
	return rec, true, nil
}

// Pending returns up to limit unfinished tasks of class c with id > after, in
// ascending id order, from one statement (one snapshot), through the partial
// index tasks_pending.
func (p *Postgres) Pending(ctx context.Context, c messages.Class, after uint64, limit int) ([]task.Record, error) {
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
	rows, err := p.pool.Query(ctx, p.sql.pending, int16(c), pgID(after), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	defer rows.Close()
	out := make([]task.Record, 0, min(limit, 1024))
	for rows.Next() {
		out = append(out, task.Record{})
		if err := scanTask(rows, &out[len(out)-1]); err != nil {
			return nil, fmt.Errorf("store: pending scan: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending scan: %w", err)
	}
	return out, nil
}

// Results calls fn, in ascending id order, for every result finished at or
// after since. The rows stream from one statement; an error from fn stops
// the scan and is returned as is.
func (p *Postgres) Results(ctx context.Context, since time.Time, fn func(task.Result) error) error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := p.pool.Query(ctx, p.sql.results, since.UnixNano())
	if err != nil {
		return fmt.Errorf("store: results scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec task.Result
		if err := scanResult(rows, &rec); err != nil {
			return fmt.Errorf("store: results scan: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: results scan: %w", err)
	}
	return nil
}

// MaxID returns the largest task id ever committed, 0 if none. Sweep never
// lowers it.
func (p *Postgres) MaxID(ctx context.Context) (uint64, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var v int64
	if err := p.pool.QueryRow(ctx, p.sql.maxID).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read max id: %w", err)
	}
	return fromPgID(v), nil
}

// Sweep deletes the task and result records of up to limit tasks that
// finished before cutoff, oldest first, in one transaction, and returns how
// many it deleted.
func (p *Postgres) Sweep(ctx context.Context, cutoff time.Time, limit int) (int, error) {
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
	var n int64
	if err := p.pool.QueryRow(ctx, p.sql.sweep, cutoff.UnixNano(), int64(limit)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: sweep: %w", err)
	}
	if n > 0 {
		p.log.Debug("swept results", "count", n, "cutoff", cutoff)
	}
	return int(n), nil
}

// controlPaused is the controls row holding the paused set.
const controlPaused = "paused"

// Paused returns the stored paused set, none if it was never written.
func (p *Postgres) Paused(ctx context.Context) (task.Paused, error) {
	if err := p.acquire(); err != nil {
		return task.Paused{}, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return task.Paused{}, err
	}
	var v []byte
	err := p.pool.QueryRow(ctx, p.sql.control, controlPaused).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return task.Paused{}, nil
	}
	if err != nil {
		return task.Paused{}, fmt.Errorf("store: read paused set: %w", err)
	}
	return decodePaused(v)
}
