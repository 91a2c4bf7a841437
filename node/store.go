package node

import (
	"context"
	"fmt"
	"path/filepath"

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

// StartLogName is the file in DataDir that records attempt starts
// (store.StartLog).
const StartLogName = "shoal-starts.log"

// openStartLog opens a Pebble node's attempt start log and makes the starts
// it held durable in the store before anything is granted: the attempts
// that were running when the node last stopped count at recovery. A
// PostgreSQL node has none (nil): its starts are committed to the store
// before their grants go out (actors/queue/grants.go).
func (n *Node) openStartLog(ctx context.Context) error {
	if n.cfg.Store != "" {
		return nil
	}
	l, prev, err := store.OpenStartLog(filepath.Join(n.cfg.DataDir, StartLogName), n.cfg.Logger)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if len(prev) > 0 {
		if err := n.store.Commit(ctx, &store.Batch{Starts: prev}); err != nil {
			_ = l.Close()
			return fmt.Errorf("node: record the attempts interrupted by the last stop: %w", err)
		}
		n.cfg.Logger.Info("interrupted attempts counted", "tasks", len(prev))
	}
	if err := l.Reset(); err != nil {
		_ = l.Close()
		return fmt.Errorf("node: %w", err)
	}
	n.startLog = l
	return nil
}
