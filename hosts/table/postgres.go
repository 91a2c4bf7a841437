package table

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// notifyChannel is the channel the trigger notifies (schema.go).
const notifyChannel = "shoal_instructions"

// openPostgres opens the tables at url in cfg.Schema and starts the
// listener: after Open returns, every change is heard.
func openPostgres(ctx context.Context, cfg Config, url string) (Table, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > cfg.ConnectTimeout {
		cc.ConnectTimeout = cfg.ConnectTimeout
	}
	// Plans are made per execution: a generic plan made while the table was
	// small (a seq scan, say) would stay when it holds thousands of rows.
	if _, ok := cc.RuntimeParams["plan_cache_mode"]; !ok {
		cc.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cc.Host, cc.Port, cc.Database) // not the URL: it may hold a password
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %v (is the server up, and are the host, port, database and credentials right?)", ErrUnavailable, where, err)
	}
	d := dialect{name: "postgres", prefix: quoteIdent(cfg.Schema) + ".",
		now: "(extract(epoch from clock_timestamp()) * 1000)::bigint", skipLocked: " FOR UPDATE SKIP LOCKED", blob: "BYTEA"}
	if err := createSchema(ctx, db, d, true, cfg.Schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, where, err)
	}
	t := newSQLTable(db, d)
	lctx, stop := context.WithCancel(context.Background())
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() { defer close(done); t.listen(lctx, cc, ready) }()
	t.onClose = func() { stop(); <-done }
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("%w: %s: listen for notifications: %v", ErrUnavailable, where, err)
	}
	return t, nil
}

// listen holds a connection LISTENing on notifyChannel and wakes the
// subscribers on every notification. A lost connection is dialled again
// (every second at most), with a wake-up after each reconnect since
// notifications sent meanwhile are lost; subscribers poll as well, so an
// outage delays, never loses, work. The first LISTEN's outcome goes to ready.
func (t *sqlTable) listen(ctx context.Context, cc *pgx.ConnConfig, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
				_ = conn.Close(context.Background())
			}
		}
		if first {
			ready <- err
			first = false
			if err != nil {
				return
			}
		}
		if err == nil {
			t.hub.wake()
			for {
				if _, err = conn.WaitForNotification(ctx); err != nil {
					break
				}
				t.hub.wake()
			}
			_ = conn.Close(context.Background())
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
