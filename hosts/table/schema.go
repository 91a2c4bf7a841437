package table

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
)

// schemaVersion is the layout this build writes; a database with a higher
// one is refused rather than written in a layout this build does not know.
const schemaVersion = 1

// schemaDDL is the one schema, written in the SQL both backends accept;
// {blob} and {serial} are the two spellings that differ. Times are unix
// milliseconds by the database's clock (0: not reached).
const schemaDDL = `
CREATE TABLE IF NOT EXISTS {t}instructions (
	id          {serial},
	node        TEXT    NOT NULL DEFAULT '',
	task_id     BIGINT  NOT NULL DEFAULT 0,
	attempt     INTEGER NOT NULL DEFAULT 0,
	host        TEXT    NOT NULL DEFAULT '',
	type        TEXT    NOT NULL DEFAULT '',
	kind        TEXT    NOT NULL CHECK (kind IN ('task', 'config', 'ops')),
	payload     {blob}  NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('new', 'taken', 'done', 'failed')),
	taker       TEXT    NOT NULL DEFAULT '',
	lease_until BIGINT  NOT NULL DEFAULT 0,
	result      {blob}  NOT NULL DEFAULT '',
	error       TEXT    NOT NULL DEFAULT '',
	created_at  BIGINT  NOT NULL,
	taken_at    BIGINT  NOT NULL DEFAULT 0,
	finished_at BIGINT  NOT NULL DEFAULT 0,
	updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS {p}instructions_attempt ON {t}instructions (node, task_id, attempt) WHERE kind = 'task';
CREATE INDEX IF NOT EXISTS {p}instructions_new ON {t}instructions (state, type, id);
CREATE INDEX IF NOT EXISTS {p}instructions_finished ON {t}instructions (node, finished_at);
CREATE TABLE IF NOT EXISTS {t}host_status (
	host        TEXT PRIMARY KEY,
	agent       TEXT NOT NULL,
	types       TEXT NOT NULL,
	cpu         DOUBLE PRECISION NOT NULL,
	mem         DOUBLE PRECISION NOT NULL,
	disk        DOUBLE PRECISION NOT NULL,
	procs       INTEGER NOT NULL,
	ip          TEXT NOT NULL,
	running     INTEGER NOT NULL,
	reported_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS {t}meta (
	key   TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
INSERT INTO {t}meta (key, value) VALUES ('schema_version', {v}) ON CONFLICT (key) DO NOTHING;
`

// pgNotifyDDL makes every statement that writes a new instruction or
// finishes one NOTIFY the channel shoal_instructions, once: statement
// triggers over the rows the statement changed (transition tables), so a
// statement that changes nothing (an agent's empty take), a take (new →
// taken, which nobody waits for) and a renewal stay silent, and a batch of
// 512 rows costs one notification, not 512 trigger calls. (The first
// layout notified every statement, empty ones included: agents woken by
// each other's empty takes took again, in a loop. Its trigger is replaced.)
const pgNotifyDDL = `
CREATE OR REPLACE FUNCTION {t}instructions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM changed WHERE state IN ('new', 'done', 'failed')) THEN
		PERFORM pg_notify('shoal_instructions', '');
	END IF;
	RETURN NULL;
END $$;
`

// pgNotifyTriggers: one per event (a trigger with transition tables
// serves one event).
var pgNotifyTriggers = []string{
	`CREATE TRIGGER instructions_notify_insert AFTER INSERT ON {t}instructions
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {t}instructions_notify()`,
	`CREATE TRIGGER instructions_notify_update AFTER UPDATE ON {t}instructions
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {t}instructions_notify()`,
}

// createSchema creates the tables in one transaction (under an advisory
// lock on PostgreSQL, so agents and nodes opening one database at once
// create it once) and checks the version.
func createSchema(ctx context.Context, db *sql.DB, d dialect, pgLock bool, schema string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	blob, serial, p := "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", ""
	if pgLock {
		blob, serial, p = "BYTEA", "BIGSERIAL PRIMARY KEY", ""
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7526384839405111)"); err != nil {
			return fmt.Errorf("lock schema creation: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	ddl := strings.NewReplacer("{blob}", blob, "{serial}", serial, "{p}", p, "{v}", fmt.Sprint(schemaVersion)).Replace(schemaDDL)
	for stmt := range strings.SplitSeq(d.q(ddl), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	if pgLock {
		if _, err := tx.ExecContext(ctx, d.q(pgNotifyDDL)); err != nil {
			return fmt.Errorf("create notify function: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = 'instructions_notify_update' AND tgrelid = $1::regclass`,
			d.prefix+"instructions").Scan(&n); err != nil {
			return fmt.Errorf("look for the notify trigger: %w", err)
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, d.q(`DROP TRIGGER IF EXISTS instructions_notify ON {t}instructions`)); err != nil {
				return fmt.Errorf("drop the old notify trigger: %w", err)
			}
			for _, trig := range pgNotifyTriggers {
				if _, err := tx.ExecContext(ctx, d.q(trig)); err != nil {
					return fmt.Errorf("create notify trigger: %w", err)
				}
			}
		}
	}
	var v int64
	if err := tx.QueryRowContext(ctx, d.q("SELECT value FROM {t}meta WHERE key = 'schema_version'")).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("the host tables have schema version %d, this build knows up to %d: upgrade shoal", v, schemaVersion)
	}
	return tx.Commit()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// parseDSN returns the backend a DSN names and what to open: the URL for
// PostgreSQL, the file path for SQLite.
func parseDSN(dsn string) (backend, target string, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrBadDSN, redact(err))
		}
		return "postgres", dsn, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		target = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		target = strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "file:"):
		target = strings.TrimPrefix(dsn, "file:")
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return "", "", fmt.Errorf("%w: scheme %q: use a postgres:// URL or a SQLite file path (sqlite:PATH)", ErrBadDSN, scheme)
	default:
		target = dsn
	}
	if target == "" || strings.ContainsAny(target, "?#") {
		return "", "", fmt.Errorf("%w: %q: a SQLite DSN is a file path, without query or fragment", ErrBadDSN, dsn)
	}
	return "sqlite", target, nil
}

// redact keeps a URL parse error from echoing a password.
func redact(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
