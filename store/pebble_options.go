package store

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error of PebbleConfig.Validate and
// PebbleOptions.Validate: callers test for it with errors.Is.
var ErrInvalidConfig = errors.New("store: invalid config")

// PebbleOptions are the tunables of the embedded Pebble store: everything of
// PebbleConfig but where it lives and whom it logs to, so that a node's
// configuration (node.Config.Pebble) and the command line can carry them.
//
// Durability is not among them: every Commit is fsync'd before it returns,
// whatever these say.
type PebbleOptions struct {
	// MaxGroupBytes bounds the encoded size of one group commit, in bytes: the
	// committer takes queued Commits in order until the next would exceed it.
	// A single Commit larger than this is written on its own. Default 8 MiB.
	MaxGroupBytes int
	// MemTableSize is the size of one Pebble memtable, in bytes. Larger
	// memtables mean fewer flushes (and fewer L0 files to compact) under the
	// small-write-heavy intake load, at the cost of memory: up to
	// MemTableStopWritesThreshold of them are held at once. Must be in
	// [1 MiB, 4 GiB). Default 64 MiB (docs/benchmarks.md, "Store options").
	MemTableSize uint64
	// MemTableStopWritesThreshold is how many memtables (the mutable one and
	// those queued for flushing) may exist before writes stall until a flush
	// finishes. Must be >= 2. Default 4.
	MemTableStopWritesThreshold int
	// L0CompactionThreshold is the L0 read amplification (sublevels) at
	// which Pebble starts compacting L0 into the lower levels. Must be >= 1.
	// Default 4 (Pebble's).
	L0CompactionThreshold int
	// L0StopWritesThreshold is the L0 read amplification at which writes
	// stall until compactions catch up. Must be >= L0CompactionThreshold.
	// Default 12 (Pebble's).
	L0StopWritesThreshold int
	// MaxConcurrentCompactions bounds Pebble's concurrent compactions (each
	// takes a core while it runs). Must be >= 1. Default 2.
	MaxConcurrentCompactions int
	// CacheSize is the Pebble block cache, in bytes (reads of task records by
	// Pending, Results at start-up). Default 64 MiB; 0 means Pebble's default.
	// Pebble charges its memtables to this cache, so with the default sizes
	// it holds next to no blocks once the memtables have grown (see
	// OpenPebble).
	CacheSize int64
}

// DefaultPebbleOptions returns the documented defaults.
func DefaultPebbleOptions() PebbleOptions {
	return PebbleOptions{
		MaxGroupBytes:               8 << 20,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       12,
		MaxConcurrentCompactions:    2,
		CacheSize:                   64 << 20,
	}
}

// Validate names the first bad field; its errors wrap ErrInvalidConfig.
func (o PebbleOptions) Validate() error {
	switch {
	case o.MaxGroupBytes <= 0:
		return fmt.Errorf("%w: PebbleOptions.MaxGroupBytes is %d; it must be > 0 (default 8 MiB)", ErrInvalidConfig, o.MaxGroupBytes)
	case o.MemTableSize < 1<<20 || o.MemTableSize >= 4<<30:
		return fmt.Errorf("%w: PebbleOptions.MemTableSize is %d bytes; it must be in [1 MiB, 4 GiB) (default 64 MiB)", ErrInvalidConfig, o.MemTableSize)
	case o.MemTableStopWritesThreshold < 2:
		return fmt.Errorf("%w: PebbleOptions.MemTableStopWritesThreshold is %d; it must be >= 2 (default 4)", ErrInvalidConfig, o.MemTableStopWritesThreshold)
	case o.L0CompactionThreshold < 1:
		return fmt.Errorf("%w: PebbleOptions.L0CompactionThreshold is %d; it must be >= 1 (default 4)", ErrInvalidConfig, o.L0CompactionThreshold)
	case o.L0StopWritesThreshold < o.L0CompactionThreshold:
		return fmt.Errorf("%w: PebbleOptions.L0StopWritesThreshold is %d; it must be >= L0CompactionThreshold (%d) (default 12)", ErrInvalidConfig, o.L0StopWritesThreshold, o.L0CompactionThreshold)
	case o.MaxConcurrentCompactions < 1:
		return fmt.Errorf("%w: PebbleOptions.MaxConcurrentCompactions is %d; it must be >= 1 (default 2)", ErrInvalidConfig, o.MaxConcurrentCompactions)
	case o.CacheSize < 0:
		return fmt.Errorf("%w: PebbleOptions.CacheSize is %d; it must be >= 0 (default 64 MiB)", ErrInvalidConfig, o.CacheSize)
	}
	return nil
}
