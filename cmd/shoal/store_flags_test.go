package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/shoalrt/shoal/store"
)

// The --store-* flags reach store.PebbleOptions, also through SHOAL_*; a bad
// value names the field.
func TestStoreFlags(t *testing.T) {
	parse := func(args ...string) (store.PebbleOptions, error) {
		var s storeFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		s.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		return s.options()
	}
	o, err := parse()
	if err != nil || o != store.DefaultPebbleOptions() {
		t.Fatalf("no flags = %+v, %v; want the defaults", o, err)
	}
	o, err = parse("--store-memtable-mb=16", "--store-l0-compaction-threshold=8", "--store-l0-stop-writes=20")
	if err != nil || o.MemTableSize != 16<<20 || o.L0CompactionThreshold != 8 || o.L0StopWritesThreshold != 20 {
		t.Fatalf("flags = %+v, %v", o, err)
	}
	t.Setenv("SHOAL_STORE_MEMTABLE_MB", "32")
	if o, err = parse(); err != nil || o.MemTableSize != 32<<20 {
		t.Fatalf("SHOAL_STORE_MEMTABLE_MB=32: %+v, %v", o, err)
	}
	if _, err = parse("--store-memtable-mb=0"); !errors.Is(err, store.ErrInvalidConfig) || !strings.Contains(err.Error(), "MemTableSize") {
		t.Fatalf("--store-memtable-mb=0: %v; want an error naming MemTableSize", err)
	}
}
