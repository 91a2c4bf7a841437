package node_test

import (
	"strings"
	"testing"

	"github.com/shoalrt/shoal/cluster/partition"
	"github.com/shoalrt/shoal/cluster/route"
	"github.com/shoalrt/shoal/node"
	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/store/pgtest"
	"github.com/shoalrt/shoal/task"
)

// A node on PostgreSQL (Config.Store) requeues acknowledged work after a
// restart and deduplicates against results finished before, like on Pebble.
// The restarted node has no data directory at all: everything is in the
// database.
func TestPostgresRestartRequeuesAndRemembers(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	testRestartRequeues(t, "", func(c *node.Config) { c.Store = url })
}

func TestConfigStoreValidate(t *testing.T) {
	c := node.DefaultConfig("")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Errorf("no DataDir and no Store: %v", err)
	}
	c.Store = "/var/lib/shoal"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("Store that is not a URL: %v", err)
	}
	c.Store = "postgres://u@127.0.0.1/db"
	if err := c.Validate(); err != nil {
		t.Errorf("Store URL without DataDir: %v", err)
	}
}

// The PostgreSQL store's shared-mode queries assume the cluster's id and
// partition layout: id blocks are node tags, a partition is digest byte 7.
func TestSharedStoreLayoutMatchesCluster(t *testing.T) {
	if store.IDBlockBits != route.SeqBits {
		t.Errorf("store.IDBlockBits %d != route.SeqBits %d", store.IDBlockBits, route.SeqBits)
	}
	if store.PartitionCount != partition.DefaultCount {
		t.Errorf("store.PartitionCount %d != partition.DefaultCount %d", store.PartitionCount, partition.DefaultCount)
	}
	for i := range 1000 {
		var d task.Digest
		for j := range d {
			d[j] = byte(i*31 + j*7)
		}
		if got := partition.Of(d, partition.DefaultCount); got != int(d[7]) {
			t.Fatalf("partition.Of(%x) = %d, want digest byte 7 = %d", d[:8], got, d[7])
		}
	}
	if route.TagOf(route.Base(0xabcd)+5) != 0xabcd || (route.Base(0xabcd)+5)>>store.IDBlockBits != 0xabcd {
		t.Errorf("a tag's ids are not its store id block")
	}
}
