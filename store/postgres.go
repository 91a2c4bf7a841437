package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresConfig configures the PostgreSQL store.
type PostgresConfig struct {
	// URL is the connection string, a postgres:// URL or a libpq key=value
	// string (pgx syntax: sslmode, pool_max_conns and the PG* environment
	// variables apply). Required, no default.
	URL string
	// Schema is the PostgreSQL schema holding the store's tables; it is
	// created if missing. Nodes that share one store use the same schema.
	// Default "shoal".
	Schema string
	// Logger receives the store's messages. Default: discard; nil means the
	// same.
	Logger *slog.Logger
	// MaxConns bounds the connection pool: one connection at a time writes
	// (the group committer), the rest serve reads. Default 8, at least 2.
	MaxConns int32
	// MaxGroupBytes bounds one group commit, in bytes of record data (payloads,
	// outputs, strings): the committer takes queued Commits in order until the
	// next would exceed it. A single larger Commit is written on its own.
	// Default 8 MiB.
	MaxGroupBytes int
	// CommitTimeout bounds one group transaction, from sending it to the
	// server's answer to its commit. A group that times out fails every Commit in it (whether the
	// server committed it is then unknown: every write of the store is an
	// idempotent upsert, so a caller may safely repeat it). Default 30 s.
	CommitTimeout time.Duration
	// ConnectTimeout bounds opening the store: connecting and creating the
	// schema. Default 10 s.
	ConnectTimeout time.Duration
}

// DefaultPostgresConfig returns the default configuration of a store at url.
func DefaultPostgresConfig(url string) PostgresConfig {
	return PostgresConfig{
		URL:            url,
		Schema:         "shoal",
		Logger:         slog.New(slog.DiscardHandler),
		MaxConns:       8,
		MaxGroupBytes:  8 << 20,
		CommitTimeout:  30 * time.Second,
		ConnectTimeout: 10 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c PostgresConfig) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("store: PostgresConfig.URL is empty; set a postgres:// connection URL")
	case c.Schema == "" || len(c.Schema) > 48 || strings.ContainsRune(c.Schema, 0) || strings.HasPrefix(strings.ToLower(c.Schema), "pg_"):
		return fmt.Errorf("store: PostgresConfig.Schema %q must be 1..48 bytes without NUL, not starting with pg_ (default \"shoal\")", c.Schema)
	case c.MaxConns < 2:
		return fmt.Errorf("store: PostgresConfig.MaxConns is %d; it must be >= 2 (default 8)", c.MaxConns)
	case c.MaxGroupBytes <= 0:
		return fmt.Errorf("store: PostgresConfig.MaxGroupBytes is %d; it must be > 0 (default 8 MiB)", c.MaxGroupBytes)
	case c.CommitTimeout <= 0:
		return fmt.Errorf("store: PostgresConfig.CommitTimeout is %v; it must be > 0 (default 30s)", c.CommitTimeout)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("store: PostgresConfig.ConnectTimeout is %v; it must be > 0 (default 10s)", c.ConnectTimeout)
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return fmt.Errorf("store: PostgresConfig.URL: %w", err)
	}
	return nil
}

// IsPostgresURL reports whether s names a PostgreSQL store (postgres:// or
// postgresql://) rather than a directory.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// PostgresStats are the store's write counters since it was opened.
type PostgresStats struct {
	// Commits counts write requests (Commit, CommitAsync) the committer
	// took, successfully written or not.
	Commits uint64
	// Syncs counts group transactions committed (each one WAL flush).
	// Commits/Syncs is the mean group size.
	Syncs uint64
	// MaxGroup is the largest number of requests in one transaction.
	MaxGroup uint64
	// Retries counts groups that failed as a whole and were retried one
	// request per transaction to isolate the failing request.
	Retries uint64
}

// Postgres is the Store on a PostgreSQL database. Writes go through a single
// committer goroutine that group-commits queued batches in one transaction
// (see postgres_commit.go); reads use the pool directly. The schema is in
// postgres_schema.go.
type Postgres struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	cfg  PostgresConfig
	sql  pgStatements

	commitQueue[*pgReq] // commitqueue.go

	committerDone chan struct{}

	commits, syncs, maxGroup, retries atomic.Uint64

	// Metrics (Metered): one latency observation per group; totals of
	// results written since open (not durable: see docs/metrics.md).
	commitLatency, syncLatency LatencyHistogram
	totals                     [4]atomic.Uint64

	// testHookBeforeGroup, when set (by tests, before the first write), runs
	// on the committer just before it writes a group.
	testHookBeforeGroup func()
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to cfg.URL, creates the schema if it is missing
// (idempotent, safe for several nodes opening at once) and starts the
// committer.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pcfg, _ := pgxpool.ParseConfig(cfg.URL) // checked by Validate
	pcfg.MaxConns = cfg.MaxConns
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database)
	if err := createSchema(ctx, pool, cfg.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres at %s: %w", where, err)
	}
	var syncCommit string
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit); err == nil && syncCommit == "off" {
		logger.Warn("postgres synchronous_commit is off: acknowledged commits can be lost in a server crash", "server", where)
	}
	p := &Postgres{
		pool:          pool,
		log:           logger,
		cfg:           cfg,
		sql:           statements(cfg.Schema),
		committerDone: make(chan struct{}),
	}
	p.commitQueue.init()
	go p.commitLoop()
	logger.Info("store opened", "postgres", where, "schema", cfg.Schema)
	return p, nil
}

// Close stops accepting calls (they return ErrClosed), writes every batch
// already queued, waits for running reads and closes the pool. A second Close
// returns ErrClosed.
func (p *Postgres) Close() error {
	if err := p.shut(); err != nil {
		return err
	}
	<-p.committerDone
	p.waitIdle()
	p.pool.Close()
	p.log.Info("store closed", "schema", p.cfg.Schema)
	return nil
}

// Stats returns the write counters (informational: group sizes depend on
// scheduling and the server's speed).
func (p *Postgres) Stats() PostgresStats {
	return PostgresStats{Commits: p.commits.Load(), Syncs: p.syncs.Load(), MaxGroup: p.maxGroup.Load(), Retries: p.retries.Load()}
}

// ident quotes a schema-qualified table name.
func ident(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }
