package table

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

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
	d := dialect{name: "sqlite", now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)", numbered: true, blob: "BLOB"}
	if err := createSchema(ctx, db, d, false, ""); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrUnavailable, path, err)
	}
	t := newSQLTable(db, d)
	if cfg.Watch > 0 {
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); t.watchSQLite(wctx, cfg.Watch) }()
		t.onClose = func() { stop(); <-done }
	}
	return t, nil
}

// watchSQLite is SQLite's stand-in for NOTIFY: while anyone subscribes, it
// reads PRAGMA data_version every interval, a counter SQLite bumps when
// another connection (another process, another handle) commits to the
// file, and wakes the subscribers when it moved. Writes through this
// handle wake them directly. The pragma reads the WAL index in shared
// memory: no disk I/O, a few microseconds.
func (t *sqlTable) watchSQLite(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !t.hub.subscribed() {
			continue
		}
		var v int64
		if err := t.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			continue
		}
		if last >= 0 && v != last {
			t.hub.wake()
		}
		last = v
	}
}
