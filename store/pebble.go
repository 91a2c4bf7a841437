package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// PebbleConfig configures the embedded Pebble store.
type PebbleConfig struct {
	// Dir is the directory of the Pebble database; it is created if missing.
	// Required, no default.
	Dir string
	// Logger receives the store's and Pebble's own messages (Pebble's
	// informational chatter at debug level). Default: a logger that discards
	// everything; nil means the same.
	Logger *slog.Logger
	// PebbleOptions are the store's tunables (pebble_options.go).
	PebbleOptions

	// fs replaces the file system (tests: a vfs.NewStrictMem that can lose
	// unsynced writes like a crash does).
	fs vfs.FS
}

// DefaultPebbleConfig returns the default configuration of a store in dir.
func DefaultPebbleConfig(dir string) PebbleConfig {
	return PebbleConfig{
		Dir:           dir,
		Logger:        slog.New(slog.DiscardHandler),
		PebbleOptions: DefaultPebbleOptions(),
	}
}

// Validate names the first bad field; its errors wrap ErrInvalidConfig.
func (c PebbleConfig) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: PebbleConfig.Dir is empty; set the database directory", ErrInvalidConfig)
	}
	return c.PebbleOptions.Validate()
}

// PebbleStats are the store's write counters since it was opened.
type PebbleStats struct {
	// Commits counts write requests (Commit, CommitAsync and the writes of
	// Sweep) that were written to Pebble, successfully or not.
	Commits uint64
	// Syncs counts Pebble batch commits with fsync; each carries one group.
	// Commits/Syncs is the mean group size.
	Syncs uint64
	// MaxGroup is the largest number of requests written by one sync.
	MaxGroup uint64
	// Bytes counts the encoded bytes of every group written.
	Bytes uint64
}

// Pebble is the embedded Store on a Pebble database. All writes go through a
// single committer goroutine that group-commits queued batches (see Commit).
type Pebble struct {
	db  *pebble.DB
	log *slog.Logger
	cfg PebbleConfig

	commitQueue[*commitReq] // commitqueue.go

	committerDone chan struct{}
	maxID         uint64 // committer-owned: m/maxid as last committed

	sweepMu   sync.Mutex
	sweepFrom uint64 // id where the next Sweep scan starts

	commits, syncs, maxGroup, bytes atomic.Uint64

	// Metrics (pebble_totals.go): one latency observation per group;
	// totals is committer-owned, totalsPub its copy for readers.
	commitLatency, syncLatency LatencyHistogram
	totals                     Totals
	totalsPub                  atomic.Pointer[Totals]

	// testHookBeforeGroup, when set (by tests, before the first write), runs
	// on the committer just before it writes a group.
	testHookBeforeGroup func()
}

var _ Store = (*Pebble)(nil)

// OpenPebble opens (or creates) the store in cfg.Dir.
func OpenPebble(cfg PebbleConfig) (*Pebble, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := &pebble.Options{
		// Intake writes many small records and syncs each group: a large
		// memtable keeps flushes (and L0 files) rare.
		MemTableSize:                cfg.MemTableSize,
		MemTableStopWritesThreshold: cfg.MemTableStopWritesThreshold,
		L0CompactionThreshold:       cfg.L0CompactionThreshold,
		L0StopWritesThreshold:       cfg.L0StopWritesThreshold,
		MaxConcurrentCompactions:    func() int { return cfg.MaxConcurrentCompactions },
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{logger},
		EventListener:               eventListener(logger),
	}
	if cfg.fs != nil {
		opts.FS = cfg.fs
	}
	if cfg.CacheSize > 0 {
		// Pebble reserves each memtable's size in the block cache (the
		// mutable one, one being flushed, one kept for reuse), so 64 MiB
		// memtables leave a 64 MiB cache no room for blocks. Giving blocks
		// their own room (cache = CacheSize + 1..3 × MemTableSize) was
		// measured: Task/Result lookups of flushed records got ~5x faster
		// (~25 µs to ~5 µs a pair), but W1 drain lost 3-10 % (Pending
		// scans read each block once, and caching them costs inserts,
		// evictions and page faults of new cache memory) and more the
		// longer the run. Left as it was; revisit if point lookups of old
		// records (result hub, cancel) become hot. Bloom filters only pay
		// with such a cache: without one each Get rereads the filter block.
		cache := pebble.NewCache(cfg.CacheSize)
		defer cache.Unref() // the DB holds its own reference
		opts.Cache = cache
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		if l := lockError(cfg.Dir, err); l != nil {
			return nil, l
		}
		return nil, fmt.Errorf("store: open pebble in %s: %w", cfg.Dir, err)
	}
	maxID, err := readMaxID(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	totals, err := readTotals(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	p := &Pebble{
		db:            db,
		log:           logger,
		cfg:           cfg,
		committerDone: make(chan struct{}),
		maxID:         maxID,
		totals:        totals,
	}
	p.totalsPub.Store(&totals)
	p.commitQueue.init()
	go p.commitLoop()
	logger.Info("store opened", "dir", cfg.Dir, "max_id", maxID)
	return p, nil
}

// Close stops accepting calls (they return ErrClosed), writes every batch
// already queued, waits for running reads (including a Results whose callback
// is still running) and closes the database. A second Close returns ErrClosed.
func (p *Pebble) Close() error {
	if err := p.shut(); err != nil {
		return err
	}
	<-p.committerDone
	p.waitIdle()
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("store: close pebble in %s: %w", p.cfg.Dir, err)
	}
	p.log.Info("store closed", "dir", p.cfg.Dir)
	return nil
}

// Stats returns the write counters. It is informational: group sizes depend
// on scheduling and disk speed.
func (p *Pebble) Stats() PebbleStats {
	return PebbleStats{
		Commits:  p.commits.Load(),
		Syncs:    p.syncs.Load(),
		MaxGroup: p.maxGroup.Load(),
		Bytes:    p.bytes.Load(),
	}
}

// pebbleLogger routes Pebble's log lines to slog: Infof at debug level, Fatalf
// at error level followed by a panic (Pebble expects Fatalf not to return; a
// panic, unlike os.Exit, lets the process log and unwind).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug("pebble", "text", fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble error", "text", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal", "text", s)
	panic("pebble: " + s)
}

// eventListener reports the Pebble events an operator acts on.
func eventListener(l *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			l.Error("pebble background error", "err", err)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			l.Warn("pebble disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			l.Warn("pebble write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			l.Info("pebble write stall ended")
		},
	}
}
