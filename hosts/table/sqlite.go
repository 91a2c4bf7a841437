package table

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// openSQLite opens (creating) the SQLite file at path. The file is in WAL
// mode, so readers in other processes do not block the writer, and writers
// from several processes (the node's bridge, host agents) queue on the file
// lock for up to BusyTimeout. One connection per handle: every statement of
// this package is a single autocommit statement, so a second connection in
// the same process would only contend for the same file lock.
func openSQLite(ctx context.Context, cfg Config, path string) (Table, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrBadDSN, path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: sqlite %s: %v (does its directory exist and is it writable?)", ErrUnavailable, path, err)
	}
	d := dialect{name: "sqlite", now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)", numbered: true}
	if err := createSchema(ctx, db, d, false, ""); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrUnavailable, path, err)
	}
	return newSQLTable(db, d), nil
}
