package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/shoalrt/shoal/task"
)

// Shared mode: several cluster nodes on one PostgreSQL store.
//
// Cluster task ids carry the accepting node's 16-bit tag in their top bits
// (cluster/route: ids are blocks of 2^IDBlockBits per tag), so ids are
// unique across nodes without coordination. What a node needs beyond the
// Store interface:
//   - MaxIDInBlock: where its own sequence continues (Store.MaxID is the
//     maximum over every node's ids);
//   - Adoptable and MoveOut: a survivor takes over pending tasks of nodes
//     that are gone, partition by partition, re-submitting them under its
//     own ids and removing the old rows (remembered in the moves table).
// The node reads only its own block through IDRange (idrange.go).

// IDBlockBits is the width of a node's id sequence: the block of id is
// id >> IDBlockBits (cluster/route.SeqBits; a test pins them equal).
const IDBlockBits = 48

// PartitionCount is the partition count Adoptable assumes: a task's
// partition is its digest's first 8 bytes, big-endian, mod 256, which is
// digest byte 7 (cluster/partition.DefaultCount).
const PartitionCount = 256

// MaxIDInBlock returns the largest id ever committed in block (ids
// block<<48 … block<<48 | 2^48-1), 0 if none. Like MaxID, Sweep never
// lowers it.
func (p *Postgres) MaxIDInBlock(ctx context.Context, block uint16) (uint64, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	var v *int64
	if err := p.pool.QueryRow(ctx, p.sql.blockMax, int32(block)).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read max id of block %#04x: %w", block, err)
	}
	if v == nil {
		return 0, nil
	}
	return fromPgID(*v), nil
}

// Adoptable returns up to limit pending tasks of any class with id > after,
// in ascending id order, whose id block is not in live and whose partition
// is in parts: the tasks of departed nodes that the caller now owns.
func (p *Postgres) Adoptable(ctx context.Context, live []uint16, parts []int, after uint64, limit int) ([]task.Record, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if limit <= 0 || len(parts) == 0 || after == math.MaxUint64 {
		return nil, nil
	}
	liveArg := make([]int32, len(live))
	for i, b := range live {
		liveArg[i] = int32(b)
	}
	partArg := make([]int32, len(parts))
	for i, q := range parts {
		partArg[i] = int32(q)
	}
	rows, err := p.pool.Query(ctx, p.sql.adoptable, pgID(after), liveArg, partArg, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("store: adoptable scan: %w", err)
	}
	defer rows.Close()
	var out []task.Record
	for rows.Next() {
		out = append(out, task.Record{})
		if err := scanTask(rows, &out[len(out)-1]); err != nil {
			return nil, fmt.Errorf("store: adoptable scan: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: adoptable scan: %w", err)
	}
	return out, nil
}

// MoveOut removes the pending tasks old[i], now held as to[i], in one
// transaction, and records each move (moves table: old_id, new_id,
// moved_ns). A task no longer pending is left alone. It returns how many
// tasks it removed.
func (p *Postgres) MoveOut(ctx context.Context, old, to []uint64, now time.Time) (int, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if len(old) != len(to) {
		return 0, fmt.Errorf("store: MoveOut of %d tasks to %d ids", len(old), len(to))
	}
	oldArg, toArg := make([]int64, len(old)), make([]int64, len(to))
	for i := range old {
		oldArg[i], toArg[i] = pgID(old[i]), pgID(to[i])
	}
	var n int64
	if err := p.pool.QueryRow(ctx, p.sql.moveOut, oldArg, toArg, now.UnixNano()).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: move out %d tasks: %w", len(old), err)
	}
	return int(n), nil
}

// MovedTo returns, for those of ids that a survivor adopted, the id each
// now runs under, following chains of moves (a task adopted again after its
// adopter departed too) up to maxMoveHops. Ids never moved are absent.
func (p *Postgres) MovedTo(ctx context.Context, ids []uint64) (map[uint64]uint64, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	out := make(map[uint64]uint64)
	at := make(map[uint64]uint64, len(ids)) // current id -> original id
	for _, id := range ids {
		at[id] = id
	}
	for hop := 0; hop < maxMoveHops && len(at) > 0; hop++ {
		arg := make([]int64, 0, len(at))
		for id := range at {
			arg = append(arg, pgID(id))
		}
		rows, err := p.pool.Query(ctx, p.sql.movedTo, arg)
		if err != nil {
			return nil, fmt.Errorf("store: read moves of %d ids: %w", len(arg), err)
		}
		next := make(map[uint64]uint64)
		for rows.Next() {
			var from, to int64
			if err := rows.Scan(&from, &to); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: read moves: %w", err)
			}
			orig := at[fromPgID(from)]
			out[orig] = fromPgID(to)
			next[fromPgID(to)] = orig
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: read moves: %w", err)
		}
		at = next
	}
	return out, nil
}

// maxMoveHops bounds how many successive adoptions MovedTo follows.
const maxMoveHops = 8
