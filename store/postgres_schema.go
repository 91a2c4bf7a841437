package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema of the PostgreSQL store, in its own PostgreSQL schema (default
// "shoal"). Records are plain columns, so operators can query them with psql.
//
//	tasks   one row per accepted task; pending is true until its result is
//	        written (the Pebble store's p/ index is the partial index
//	        tasks_pending on (class, id) WHERE pending)
//	results one row per finished task, indexed by finished_ns for Sweep and
//	        the dedupe window read at start-up
//	meta    key/value bigints: max_id (largest task id ever committed, never
//	        lowered by Sweep) and schema_version
//	id_blocks  largest id ever committed per block of 2^48 ids (a cluster
//	        node's tag is its block): where a node's sequence continues
//	moves   tasks of a departed node re-submitted by a survivor: old id →
//	        new id (postgres_shared.go)
//
// Ids (id, alias_of, max_id) are stored as bigint id XOR 2^63, which keeps
// uint64 order in bigint order (cluster ids carry a 16-bit node tag in their
// top bits and reach 2^64-1): in psql,
// (id::numeric + 9223372036854775808) is the shoal id. Strings (type, error, requirements) are stored as UTF-8
// text; bytes PostgreSQL's text cannot hold (invalid UTF-8, NUL) are
// replaced by U+FFFD. Payloads, outputs and digests are bytea, unchanged.
//
// createSchema runs at every open under a transaction-scoped advisory lock,
// so several nodes opening one database at once create it exactly once; it
// changes nothing when the schema exists. A schema_version above the one this
// build knows makes open fail rather than write a layout it does not know;
// an older one is migrated (pgMigrations) in the same transaction.
//
// Versions: 1, the tables above; 2 adds tasks.size and tasks.pin (a task's
// typed Size and Pin). Rows written by version 1 have both NULL and derive
// them on read from their requirements (task.Record.DerivePlacement), so the
// requirement grammar stays written once, in Go, and the migration is
// instant on a large table. 3 adds tasks.timeout_ms (NULL in older rows:
// no timeout) and the controls table: operator settings as small values,
// today the paused set (key 'paused', msgpack task.Paused), kept here
// rather than in a node's data directory so that every member sharing the
// database, and a node taking over a partition, sees the same set.
const pgSchemaVersion = 3

// pgSchemaLockKey is the advisory lock key serialising schema creation (an
// arbitrary constant: "shoal" in ASCII).
const pgSchemaLockKey = 0x73686f616c

const pgSchemaDDL = `
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.tasks (
	id           bigint   PRIMARY KEY,
	type         text     NOT NULL,
	payload      bytea,
	priority     integer  NOT NULL,
	class        smallint NOT NULL,
	digest       bytea    NOT NULL,
	requirements jsonb,
	max_attempts integer  NOT NULL,
	attempts     integer  NOT NULL,
	submitted_ns bigint   NOT NULL,
	pending      boolean  NOT NULL,
	size         double precision,
	pin          text,
	timeout_ms   bigint
);
CREATE INDEX IF NOT EXISTS tasks_pending ON {s}.tasks (class, id) WHERE pending;
CREATE TABLE IF NOT EXISTS {s}.results (
	id          bigint   PRIMARY KEY,
	class       smallint NOT NULL,
	digest      bytea    NOT NULL,
	state       smallint NOT NULL,
	output      bytea,
	error       text     NOT NULL,
	attempts    integer  NOT NULL,
	alias_of    bigint   NOT NULL,
	finished_ns bigint   NOT NULL
);
CREATE INDEX IF NOT EXISTS results_finished ON {s}.results (finished_ns);
CREATE TABLE IF NOT EXISTS {s}.meta (
	key   text   PRIMARY KEY,
	value bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.id_blocks (
	block  integer PRIMARY KEY,
	max_id bigint  NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.controls (
	key   text  PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.moves (
	old_id   bigint PRIMARY KEY,
	new_id   bigint NOT NULL,
	moved_ns bigint NOT NULL
);
INSERT INTO {s}.meta (key, value) VALUES ('max_id', -9223372036854775808), ('schema_version', {v}) ON CONFLICT (key) DO NOTHING;
`

func createSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin schema creation: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgSchemaLockKey)); err != nil {
		return fmt.Errorf("lock schema creation: %w", err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	ddl := strings.NewReplacer("{s}", s, "{v}", strconv.Itoa(pgSchemaVersion)).Replace(pgSchemaDDL)
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create schema %s: %w", s, err)
	}
	var v int64
	if err := tx.QueryRow(ctx, "SELECT value FROM "+s+".meta WHERE key = 'schema_version'").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > pgSchemaVersion {
		return fmt.Errorf("schema %s has version %d, this build knows up to %d: upgrade shoal", s, v, pgSchemaVersion)
	}
	if v < 1 {
		return fmt.Errorf("schema %s has version %d: not a shoal schema version", s, v)
	}
	for ; v < pgSchemaVersion; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(pgMigrations[v-1], "{s}", s)); err != nil {
			return fmt.Errorf("migrate schema %s from version %d to %d: %w", s, v, v+1, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE "+s+".meta SET value = $1 WHERE key = 'schema_version'", v+1); err != nil {
			return fmt.Errorf("migrate schema %s to version %d: %w", s, v+1, err)
		}
	}
	return tx.Commit(ctx)
}

// pgMigrations[i] migrates a schema from version i+1 to i+2. Each is
// idempotent (IF NOT EXISTS), and runs under createSchema's lock.
var pgMigrations = []string{
	// 1 → 2: the typed Size and Pin of a task, NULL in older rows.
	`ALTER TABLE {s}.tasks ADD COLUMN IF NOT EXISTS size double precision;
ALTER TABLE {s}.tasks ADD COLUMN IF NOT EXISTS pin text;`,
	// 2 → 3: a task's run timeout, NULL in older rows (none); operator
	// controls (the paused set).
	`ALTER TABLE {s}.tasks ADD COLUMN IF NOT EXISTS timeout_ms bigint;
CREATE TABLE IF NOT EXISTS {s}.controls (key text PRIMARY KEY, value bytea NOT NULL);`,
}

// pgStatements are the store's SQL texts with the schema filled in.
type pgStatements struct {
	insertTasks, insertResults, finishTasks, setAttempts, raiseMaxID, raiseBlocks string
	blockMax, adoptable, moveOut, movedTo                                         string
	task, result, pending, results, maxID, sweep                                  string
	setControl, control                                                           string
}

const (
	taskCols   = "id, type, payload, priority, class, digest, requirements, max_attempts, attempts, submitted_ns, size, pin, timeout_ms"
	resultCols = "id, class, digest, state, output, error, attempts, alias_of, finished_ns"
)

func statements(schema string) pgStatements {
	tasks, results, meta := ident(schema, "tasks"), ident(schema, "results"), ident(schema, "meta")
	blocks, moves := ident(schema, "id_blocks"), ident(schema, "moves")
	return pgStatements{
		// Multi-row upserts from arrays: one statement and one round trip
		// for any number of rows. A rewritten task is pending again and a
		// rewritten result replaces the old one, as in the Pebble store.
		insertTasks: `INSERT INTO ` + tasks + ` (` + taskCols + `, pending)
SELECT u.id, u.type, u.payload, u.priority, u.class, u.digest, u.req::jsonb, u.max_attempts, u.attempts, u.submitted_ns, u.size, u.pin,
  NULLIF(u.timeout_ms, 0), true
FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::integer[], $5::smallint[], $6::bytea[], $7::text[], $8::integer[], $9::integer[], $10::bigint[],
  $11::double precision[], $12::text[], $13::bigint[])
  AS u(id, type, payload, priority, class, digest, req, max_attempts, attempts, submitted_ns, size, pin, timeout_ms)
ON CONFLICT (id) DO UPDATE SET type = EXCLUDED.type, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
  class = EXCLUDED.class, digest = EXCLUDED.digest, requirements = EXCLUDED.requirements, max_attempts = EXCLUDED.max_attempts,
  attempts = EXCLUDED.attempts, submitted_ns = EXCLUDED.submitted_ns, size = EXCLUDED.size, pin = EXCLUDED.pin,
  timeout_ms = EXCLUDED.timeout_ms, pending = true`,
		insertResults: `INSERT INTO ` + results + ` (` + resultCols + `)
SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bytea[], $4::smallint[], $5::bytea[], $6::text[], $7::integer[], $8::bigint[], $9::bigint[])
ON CONFLICT (id) DO UPDATE SET class = EXCLUDED.class, digest = EXCLUDED.digest, state = EXCLUDED.state, output = EXCLUDED.output,
  error = EXCLUDED.error, attempts = EXCLUDED.attempts, alias_of = EXCLUDED.alias_of, finished_ns = EXCLUDED.finished_ns`,
		finishTasks: `UPDATE ` + tasks + ` SET pending = false WHERE id = ANY($1::bigint[]) AND pending`,
		setAttempts: `UPDATE ` + tasks + ` AS t SET attempts = u.attempts
FROM unnest($1::bigint[], $2::integer[]) AS u(id, attempts) WHERE t.id = u.id`,
		raiseMaxID: `UPDATE ` + meta + ` SET value = $1 WHERE key = 'max_id' AND value < $1`,
		raiseBlocks: `INSERT INTO ` + blocks + ` (block, max_id) SELECT * FROM unnest($1::integer[], $2::bigint[])
ON CONFLICT (block) DO UPDATE SET max_id = GREATEST(` + blocks + `.max_id, EXCLUDED.max_id)`,
		blockMax: `SELECT max(max_id) FROM ` + blocks + ` WHERE block = $1`,
		// The stored id is id XOR 2^63, so its arithmetic shift by 48 is
		// the block minus 2^15; digest byte 7 is the partition (of 256).
		adoptable: `SELECT ` + taskCols + ` FROM ` + tasks + ` WHERE pending AND id > $1
  AND NOT ((id >> 48) + 32768)::integer = ANY($2::integer[]) AND get_byte(digest, 7) = ANY($3::integer[])
ORDER BY id LIMIT $4`,
		moveOut: `WITH gone AS (
  DELETE FROM ` + tasks + ` AS t USING unnest($1::bigint[], $2::bigint[]) AS m(old_id, new_id)
  WHERE t.id = m.old_id AND t.pending RETURNING m.old_id, m.new_id
), recorded AS (
  INSERT INTO ` + moves + ` (old_id, new_id, moved_ns) SELECT old_id, new_id, $3 FROM gone
  ON CONFLICT (old_id) DO UPDATE SET new_id = EXCLUDED.new_id, moved_ns = EXCLUDED.moved_ns
)
SELECT count(*) FROM gone`,
		movedTo: `SELECT old_id, new_id FROM ` + moves + ` WHERE old_id = ANY($1::bigint[])`,

		task:    `SELECT ` + taskCols + ` FROM ` + tasks + ` WHERE id = $1`,
		result:  `SELECT ` + resultCols + ` FROM ` + results + ` WHERE id = $1`,
		pending: `SELECT ` + taskCols + ` FROM ` + tasks + ` WHERE pending AND class = $1 AND id > $2 ORDER BY id LIMIT $3`,
		results: `SELECT ` + resultCols + ` FROM ` + results + ` WHERE finished_ns >= $1 ORDER BY id`,
		maxID:   `SELECT value FROM ` + meta + ` WHERE key = 'max_id'`,
		setControl: `INSERT INTO ` + ident(schema, "controls") + ` (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
		control: `SELECT value FROM ` + ident(schema, "controls") + ` WHERE key = $1`,
		// Expired results go oldest first (the finished_ns index); their
		// task records go in the same statement.
		sweep: `WITH gone AS (
  DELETE FROM ` + results + ` WHERE id IN (SELECT id FROM ` + results + ` WHERE finished_ns < $1 ORDER BY finished_ns LIMIT $2)
  RETURNING id
), tasks_gone AS (
  DELETE FROM ` + tasks + ` WHERE id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone`,
	}
}
