package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Batches (issue 13 item 8): a bridge with thousands of tasks in flight and
// an agent finishing thousands of instructions a second cannot afford a
// statement per instruction. PutBatch and CompleteBatch write many rows in
// one statement per chunk; each row keeps the meaning Put and Complete give
// it (idempotent per attempt, fenced by taker).

// Completion is one result for CompleteBatch: done with Result when
// Failure is empty, failed with Failure otherwise.
type Completion struct {
	ID      int64
	Result  []byte
	Failure string
}

// batchRows bounds the rows of one statement: 7 parameters a row stays far
// below SQLite's 32,766 and PostgreSQL's 65,535.
const batchRows = 512

type putKey struct {
	node    string
	task    uint64
	attempt int32
}

func (t *sqlTable) PutBatch(ctx context.Context, ins []Instruction) ([]Instruction, error) {
	out := make([]Instruction, len(ins))
	var tasks []int // indexes of task instructions: batched
	for i, in := range ins {
		if in.Kind == "" {
			in.Kind = KindTask
			ins[i].Kind = KindTask
		}
		if in.Kind != KindTask {
			got, err := t.Put(ctx, in) // config and ops instructions are rare: one at a time
			if err != nil {
				return nil, err
			}
			out[i] = got
			continue
		}
		if in.TaskID == 0 || in.Attempt < 1 || in.Type == "" {
			return nil, fmt.Errorf("%w: a task instruction needs TaskID, Attempt >= 1 and Type (got %d, %d, %q)", ErrInvalid, in.TaskID, in.Attempt, in.Type)
		}
		tasks = append(tasks, i)
	}
	wrote := false
	for chunk := range slices.Chunk(tasks, batchRows) {
		rows := make([]string, padRows(len(chunk)))
		args := make([]any, 0, 7*len(rows))
		for j := range rows {
			in := ins[chunk[min(j, len(chunk)-1)]]
			payload := in.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, in.Node, int64(in.TaskID), in.Attempt, in.Host, in.Type, string(in.Kind), payload)
		}
		q := t.text(fmt.Sprintf("put/%d", len(rows)), func() string {
			for j := range rows {
				n := 7 * j
				rows[j] = fmt.Sprintf("($%d, $%d, $%d, $%d, $%d, $%d, $%d, 'new', {now}, {now})", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
			}
			return t.d.qSeq(`INSERT INTO {t}instructions (node, task_id, attempt, host, type, kind, payload, state, created_at, updated_at)
			VALUES ` + strings.Join(rows, ", ") + `
			ON CONFLICT (node, task_id, attempt) WHERE kind = 'task' DO NOTHING RETURNING id, node, task_id, attempt, created_at`)
		})
		r, err := t.query(ctx, q, args...)
		if err != nil {
			return nil, t.wrap("put instructions", err)
		}
		byKey := make(map[putKey][2]int64, len(chunk))
		for r.Next() {
			var id, task, created int64
			var node string
			var attempt int32
			if err := r.Scan(&id, &node, &task, &attempt, &created); err != nil {
				r.Close()
				return nil, t.wrap("put instructions", err)
			}
			byKey[putKey{node, uint64(task), attempt}] = [2]int64{id, created}
		}
		if err := errors.Join(r.Err(), r.Close()); err != nil {
			return nil, t.wrap("put instructions", err)
		}
		wrote = wrote || len(byKey) > 0
		for _, i := range chunk {
			in := ins[i]
			if g, ok := byKey[putKey{in.Node, in.TaskID, in.Attempt}]; ok {
				// A new row: what was given, as written.
				in.ID, in.State, in.Created, in.Updated = g[0], StateNew, ms(g[1]), ms(g[1])
				if in.Payload == nil {
					in.Payload = []byte{}
				}
				out[i] = in
				continue
			}
			// The attempt had its instruction already (or appears twice
			// in the batch): read it.
			r, err := t.db.QueryContext(ctx, t.putGet, int64(in.TaskID), in.Attempt, in.Node)
			if err != nil {
				return nil, t.wrap("read existing instruction", err)
			}
			ex, err := scanAll(r)
			if err != nil || len(ex) != 1 {
				return nil, t.wrap("read existing instruction", fmt.Errorf("task %d attempt %d: %d rows (%v)", in.TaskID, in.Attempt, len(ex), err))
			}
			out[i] = ex[0]
		}
	}
	if wrote {
		t.hub.wake()
	}
	return out, nil
}

func (t *sqlTable) CompleteBatch(ctx context.Context, taker string, cs []Completion) ([]error, error) {
	if taker == "" {
		return nil, fmt.Errorf("%w: complete needs a taker", ErrInvalid)
	}
	applied := make(map[int64]bool, len(cs))
	for chunk := range slices.Chunk(cs, batchRows) {
		rows := make([]string, padRows(len(chunk)))
		args := make([]any, 0, 4*len(rows)+1)
		for j := range rows {
			c := chunk[min(j, len(chunk)-1)]
			state, result := StateDone, c.Result
			if c.Failure != "" {
				state, result = StateFailed, nil
			}
			if result == nil {
				result = []byte{}
			}
			args = append(args, c.ID, string(state), result, c.Failure)
		}
		args = append(args, taker)
		// (state || '') keeps the planner on the primary key: by the state
		// index it would read every taken row, and their dead versions.
		q := t.text(fmt.Sprintf("complete/%d", len(rows)), func() string {
			for j := range rows {
				n := 4 * j
				if j == 0 { // the first row types the columns (PostgreSQL); SQLite keeps the values as given
					rows[j] = fmt.Sprintf("(CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS %s), CAST($%d AS TEXT))", n+1, n+2, n+3, t.d.blob, n+4)
				} else {
					rows[j] = fmt.Sprintf("($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
				}
			}
			return t.d.qSeq(`WITH v (vid, vstate, vresult, verror) AS (VALUES ` + strings.Join(rows, ", ") + `)
			UPDATE {t}instructions SET state = v.vstate, result = v.vresult, error = v.verror, finished_at = {now}, updated_at = {now}
			FROM v WHERE id = v.vid AND (state || '') = 'taken' AND taker = $` + strconv.Itoa(len(args)) + ` RETURNING id`)
		})
		r, err := t.query(ctx, q, args...)
		if err != nil {
			return nil, t.wrap("complete instructions", err)
		}
		for r.Next() {
			var id int64
			if err := r.Scan(&id); err != nil {
				r.Close()
				return nil, t.wrap("complete instructions", err)
			}
			applied[id] = true
		}
		if err := r.Close(); err != nil {
			return nil, t.wrap("complete instructions", err)
		}
		if err := r.Err(); err != nil {
			return nil, t.wrap("complete instructions", err)
		}
	}
	errs := make([]error, len(cs))
	for i, c := range cs {
		if !applied[c.ID] {
			errs[i] = fmt.Errorf("%w: instruction %d, taker %s: result not applied", ErrNotTaken, c.ID, taker)
		}
	}
	if len(applied) > 0 {
		t.hub.wake()
	}
	return errs, nil
}
