package store_test

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/shoalrt/shoal/store"
	"github.com/shoalrt/shoal/store/pgtest"
	"github.com/shoalrt/shoal/store/storetest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestConformancePebble(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func(t *testing.T) store.Store {
			cfg := store.DefaultPebbleConfig(dir)
			cfg.Logger = testLogger(t)
			s, err := store.OpenPebble(cfg)
			if err != nil {
				t.Fatalf("OpenPebble: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}

// TestConformancePostgres runs the contract on one throwaway server, each
// test in a schema of its own.
func TestConformancePostgres(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		schema := fmt.Sprintf("conf_%d", n.Add(1))
		return func(t *testing.T) store.Store {
			cfg := store.DefaultPostgresConfig(url)
			cfg.Schema, cfg.Logger = schema, testLogger(t)
			s, err := store.OpenPostgres(t.Context(), cfg)
			if err != nil {
				t.Fatalf("OpenPostgres: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	})
}
