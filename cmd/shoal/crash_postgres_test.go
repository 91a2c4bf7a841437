package main

import (
	"testing"

	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/store/pgtest"
)

// TestCrashRecoveryPostgres is TestCrashRecovery with the node on
// PostgreSQL (--store): SIGKILL while submissions and work run, restart on
// the same database, every acknowledged task completes.
func TestCrashRecoveryPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	testCrashRecovery(t, postgresChoice{url: pgtest.Start(t).NewDatabase(t)})
}

type postgresChoice struct{ url string }

func (c postgresChoice) args(string) []string { return []string{"--store", c.url} }

func (c postgresChoice) open(t *testing.T, _ string) store.Store {
	st, err := store.OpenPostgres(t.Context(), store.DefaultPostgresConfig(c.url))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
