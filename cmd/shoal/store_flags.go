package main

import (
	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/store"
)

// storeFlags are the Pebble store's tunables (store.PebbleOptions) on the
// command line of every command that opens a node; like every flag, each can
// be set as SHOAL_<FLAG> (SHOAL_STORE_MEMTABLE_MB). Sizes are in MiB.
type storeFlags struct {
	memtableMB, cacheMB                 int
	memtableStop, l0Compact, l0Stop, mc int
}

func (s *storeFlags) add(f *pflag.FlagSet) {
	d := store.DefaultPebbleOptions()
	f.IntVar(&s.memtableMB, "store-memtable-mb", int(d.MemTableSize>>20), "Pebble memtable size in MiB (1..4095): larger means fewer flushes and L0 files, up to --store-memtable-stop-writes of them in memory")
	f.IntVar(&s.memtableStop, "store-memtable-stop-writes", d.MemTableStopWritesThreshold, "memtables (the mutable one and those waiting to flush) at which Pebble stalls writes")
	f.IntVar(&s.l0Compact, "store-l0-compaction-threshold", d.L0CompactionThreshold, "L0 sublevels at which Pebble starts compacting L0")
	f.IntVar(&s.l0Stop, "store-l0-stop-writes", d.L0StopWritesThreshold, "L0 sublevels at which Pebble stalls writes until compactions catch up")
	f.IntVar(&s.mc, "store-max-compactions", d.MaxConcurrentCompactions, "concurrent Pebble compactions (each takes a core while it runs)")
	f.IntVar(&s.cacheMB, "store-cache-mb", int(d.CacheSize>>20), "Pebble block cache in MiB (0: Pebble's default); the memtables are charged to it")
}

// options returns the flags as store options, checked (errors name the
// field and wrap store.ErrInvalidConfig).
func (s *storeFlags) options() (store.PebbleOptions, error) {
	o := store.DefaultPebbleOptions()
	if s.memtableMB < 0 { // a negative size would wrap around in uint64
		s.memtableMB = 0
	}
	o.MemTableSize = uint64(s.memtableMB) << 20
	o.MemTableStopWritesThreshold = s.memtableStop
	o.L0CompactionThreshold, o.L0StopWritesThreshold = s.l0Compact, s.l0Stop
	o.MaxConcurrentCompactions = s.mc
	o.CacheSize = int64(s.cacheMB) << 20
	return o, o.Validate()
}
