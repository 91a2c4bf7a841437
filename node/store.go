package node

import (
	"context"

	"github.com/shoalrt/shoal/store"
)

// openStore opens the task store cfg selects: PostgreSQL when cfg.Store is a
// postgres:// URL, else Pebble in cfg.DataDir.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.Store != "" {
		pcfg := store.DefaultPostgresConfig(cfg.Store)
		pcfg.Logger = cfg.Logger
		return store.OpenPostgres(ctx, pcfg)
	}
	pcfg := store.PebbleConfig{Dir: cfg.DataDir, Logger: cfg.Logger, PebbleOptions: cfg.Pebble}
	return store.OpenPebble(pcfg)
}
