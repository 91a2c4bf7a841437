package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/task"
)

// m/totals holds the Pebble store's result totals (Totals) as four be8
// counts. The committer, the only writer, adds each request's results to
// them and writes the new totals into that request's own batch, so they
// become durable exactly with the results they count, cost one small
// record per request that carries results, and need no scan at start-up.
// Sweep does not lower them.
var totalsKey = []byte("m/totals")

const totalsEntrySize = batchEntryOverhead + 8 + 4*8

func readTotals(db *pebble.DB) (Totals, error) {
	v, closer, err := db.Get(totalsKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return Totals{}, nil
	}
	if err != nil {
		return Totals{}, fmt.Errorf("store: read %s: %w", totalsKey, err)
	}
	defer closer.Close()
	if len(v) != 4*8 {
		return Totals{}, fmt.Errorf("store: corrupt %s: %d bytes, want 32", totalsKey, len(v))
	}
	return Totals{Done: binary.BigEndian.Uint64(v), Dead: binary.BigEndian.Uint64(v[8:]),
		Cancelled: binary.BigEndian.Uint64(v[16:]), Deduplicated: binary.BigEndian.Uint64(v[24:])}, nil
}

func (t Totals) encode() []byte {
	v := make([]byte, 4*8)
	binary.BigEndian.PutUint64(v, t.Done)
	binary.BigEndian.PutUint64(v[8:], t.Dead)
	binary.BigEndian.PutUint64(v[16:], t.Cancelled)
	binary.BigEndian.PutUint64(v[24:], t.Deduplicated)
	return v
}

// add counts rs into t as task.Counters.Count does.
func (t Totals) add(rs []task.Result) Totals {
	for i := range rs {
		switch r := &rs[i]; {
		case r.AliasOf != 0 && r.State == messages.StateDone:
			t.Deduplicated++
		case r.State == messages.StateDone:
			t.Done++
		case r.State == messages.StateDead:
			t.Dead++
		case r.State == messages.StateCancelled:
			t.Cancelled++
		}
	}
	return t
}

// CommitLatency implements Metered.
func (p *Pebble) CommitLatency() HistogramSnapshot { return p.commitLatency.Snapshot() }

// SyncLatency implements Metered.
func (p *Pebble) SyncLatency() HistogramSnapshot { return p.syncLatency.Snapshot() }

// Totals implements Metered: durable, read from memory.
func (p *Pebble) Totals() (Totals, bool) {
	if t := p.totalsPub.Load(); t != nil {
		return *t, true
	}
	return Totals{}, true
}
