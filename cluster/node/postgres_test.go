package node_test

import (
	"strings"
	"testing"

	"github.com/shoalrt/shoal/cluster/node"
	"github.com/shoalrt/shoal/store/pgtest"
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
