package store

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shoalrt/shoal/messages"
	"github.com/shoalrt/shoal/store/pgtest"
	"github.com/shoalrt/shoal/task"
)

// Tests of the PostgreSQL store's own behaviour; the shared contract is in
// storetest (conformance_test.go). One server, a schema per test.
func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	var n atomic.Int64
	cfgFor := func(t *testing.T) PostgresConfig {
		cfg := DefaultPostgresConfig(url)
		cfg.Schema = fmt.Sprintf("st_%d", n.Add(1))
		return cfg
	}
	open := func(t *testing.T, cfg PostgresConfig) *Postgres {
		t.Helper()
		p, err := OpenPostgres(t.Context(), cfg)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	t.Run("GroupCommitHeld", func(t *testing.T) { testPgGroupCommitHeld(t, open(t, cfgFor(t))) })
	t.Run("GroupFailureIsolated", func(t *testing.T) { testPgGroupFailureIsolated(t, open(t, cfgFor(t))) })
	t.Run("Shared", func(t *testing.T) { testPgShared(t, open(t, cfgFor(t))) })
	t.Run("TextSanitized", func(t *testing.T) { testPgTextSanitized(t, open(t, cfgFor(t))) })
	t.Run("ConcurrentOpen", func(t *testing.T) {
		cfg := cfgFor(t)
		var wg sync.WaitGroup
		stores := make([]*Postgres, 4)
		errs := make([]error, 4)
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = OpenPostgres(t.Context(), cfg) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent OpenPostgres %d: %v", i, err)
			}
			defer stores[i].Close()
		}
		if err := stores[0].Commit(t.Context(), &Batch{Tasks: []task.Record{mkTask(5, messages.ClassNormal)}}); err != nil {
			t.Fatal(err)
		}
		if id, err := stores[3].MaxID(t.Context()); err != nil || id != 5 {
			t.Errorf("MaxID through another store on the schema = %d, %v; want 5", id, err)
		}
	})
	t.Run("SchemaTooNew", func(t *testing.T) {
		cfg := cfgFor(t)
		p := open(t, cfg)
		if _, err := p.pool.Exec(t.Context(), "UPDATE "+ident(cfg.Schema, "meta")+" SET value = 99 WHERE key = 'schema_version'"); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenPostgres(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "version 99") {
			t.Errorf("open of a newer schema = %v; want a version error", err)
		}
	})
	t.Run("MigrateV1", func(t *testing.T) { testPgMigrateV1(t, cfgFor(t)) })
	t.Run("Unreachable", func(t *testing.T) {
		cfg := DefaultPostgresConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/nope?sslmode=disable&connect_timeout=2", srv.Port))
		if _, err := OpenPostgres(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("open of a missing database = %v; want an error naming it", err)
		}
	})
}

// testPgGroupCommitHeld: 63 commits queue while the committer holds the
// first one, then share one transaction.
func testPgGroupCommitHeld(t *testing.T, p *Postgres) {
	entered, release := holdPgCommitter(p)
	defer release()
	first := p.CommitAsync(t.Context(), &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered
	var wg sync.WaitGroup
	errs := make(chan error, 63)
	for i := range 63 {
		wg.Go(func() {
			if err := p.Commit(t.Context(), &Batch{Tasks: []task.Record{mkTask(uint64(i+2), messages.ClassNormal)}}); err != nil {
				errs <- err
			}
		})
	}
	for p.queued() < 63 {
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Commit: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if ids := pendingIDs(t, p, messages.ClassNormal, 0, 100); len(ids) != 64 {
		t.Errorf("pending = %d tasks, want 64", len(ids))
	}
	if s := p.Stats(); s.Commits != 64 || s.Syncs != 2 || s.MaxGroup != 63 {
		t.Errorf("stats = %+v; want 64 commits in 2 transactions, largest 63", s)
	}
}

// testPgGroupFailureIsolated: a request the server rejects fails alone; the
// others of its group are written.
func testPgGroupFailureIsolated(t *testing.T, p *Postgres) {
	if _, err := p.pool.Exec(t.Context(), "ALTER TABLE "+ident(p.cfg.Schema, "tasks")+" ADD CONSTRAINT no_bad CHECK (type <> 'bad')"); err != nil {
		t.Fatal(err)
	}
	entered, release := holdPgCommitter(p)
	defer release()
	ctx := t.Context()
	first := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(1, messages.ClassNormal)}})
	<-entered
	a := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{mkTask(2, messages.ClassNormal)}})
	badTask := mkTask(3, messages.ClassNormal)
	badTask.Type = "bad"
	bad := p.CommitAsync(ctx, &Batch{Tasks: []task.Record{badTask, mkTask(4, messages.ClassNormal)}})
	c := p.CommitAsync(ctx, &Batch{Attempts: []AttemptUpdate{{ID: 2, Attempts: 5}}})
	release()
	for _, ch := range []<-chan error{first, a, c} {
		if err := <-ch; err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if err := <-bad; err == nil || !strings.Contains(err.Error(), "no_bad") {
		t.Fatalf("commit violating the constraint = %v; want an error naming it", err)
	}
	for _, id := range []uint64{3, 4} {
		if _, ok := mustTask(t, p, id); ok {
			t.Errorf("task %d of the failed commit was written", id)
		}
	}
	if got, ok := mustTask(t, p, 2); !ok || got.Attempts != 5 {
		t.Errorf("task 2 = %+v, %v; want attempts 5", got, ok)
	}
	if s := p.Stats(); s.Retries != 1 {
		t.Errorf("stats = %+v; want 1 retried group", s)
	}
	// A request whose later statement fails leaves nothing of its earlier
	// ones: the task insert succeeds, the result insert is refused.
	if _, err := p.pool.Exec(t.Context(), "ALTER TABLE "+ident(p.cfg.Schema, "results")+" ADD CONSTRAINT no_bad_result CHECK (error <> 'bad')"); err != nil {
		t.Fatal(err)
	}
	r := mkResult(6, messages.ClassNormal, base)
	r.Error = "bad"
	if err := p.Commit(ctx, &Batch{Tasks: []task.Record{mkTask(6, messages.ClassNormal)}, Results: []task.Result{r}}); err == nil {
		t.Fatal("commit violating the results constraint succeeded")
	}
	if _, ok := mustTask(t, p, 6); ok {
		t.Errorf("task 6 was written although its batch's result was refused: the commit is not atomic")
	}
}

// testPgTextSanitized: strings PostgreSQL text cannot hold are stored with
// U+FFFD instead of failing the commit.
func testPgTextSanitized(t *testing.T, p *Postgres) {
	tk := mkTask(1, messages.ClassNormal)
	tk.Requirements = map[string]string{"lab\x00el": "\xff"}
	r := mkResult(1, messages.ClassNormal, base)
	r.Error = "boom\x00\xfe"
	if err := p.Commit(t.Context(), &Batch{Tasks: []task.Record{tk}, Results: []task.Result{r}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, _ := mustTask(t, p, 1)
	if got.Requirements["lab\uFFFDel"] != "\uFFFD" {
		t.Errorf("requirements = %q; want NUL and invalid bytes replaced", got.Requirements)
	}
	res, _, err := p.Result(t.Context(), 1)
	if err != nil || res.Error != "boom\uFFFD\uFFFD" {
		t.Errorf("error text = %q, %v; want NUL and invalid bytes replaced", res.Error, err)
	}
}

func holdPgCommitter(p *Postgres) (entered <-chan struct{}, release func()) {
	return holdHook(&p.testHookBeforeGroup)
}

func (p *Postgres) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

func TestPostgresConfigValidate(t *testing.T) {
	ok := DefaultPostgresConfig("postgres://u@127.0.0.1:5432/db")
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*PostgresConfig)
	}{
		{"URL", func(c *PostgresConfig) { c.URL = "" }},
		{"URL", func(c *PostgresConfig) { c.URL = "postgres://u@127.0.0.1:notaport/db" }},
		{"Schema", func(c *PostgresConfig) { c.Schema = "" }},
		{"Schema", func(c *PostgresConfig) { c.Schema = "pg_x" }},
		{"MaxConns", func(c *PostgresConfig) { c.MaxConns = 1 }},
		{"MaxGroupBytes", func(c *PostgresConfig) { c.MaxGroupBytes = 0 }},
		{"CommitTimeout", func(c *PostgresConfig) { c.CommitTimeout = 0 }},
		{"ConnectTimeout", func(c *PostgresConfig) { c.ConnectTimeout = -1 }},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate with bad %s = %v; want an error naming it", tc.field, err)
		}
		if _, err := OpenPostgres(t.Context(), c); err == nil {
			t.Errorf("OpenPostgres with bad %s succeeded", tc.field)
		}
	}
	if !IsPostgresURL("postgresql://x/y") || !IsPostgresURL("postgres://x") || IsPostgresURL("/var/lib/shoal") {
		t.Errorf("IsPostgresURL misclassifies")
	}
}

// testPgShared: per-block max ids, adoptable tasks of departed blocks in
// owned partitions, moving them out.
func testPgShared(t *testing.T, p *Postgres) {
	ctx := t.Context()
	blockA, blockB := uint64(0x0001)<<IDBlockBits, uint64(0xabcd)<<IDBlockBits
	var b Batch
	for i := uint64(1); i <= 6; i++ {
		for _, base := range []uint64{blockA, blockB} {
			tk := mkTask(base+i, messages.Class(i%3))
			tk.Digest[7] = byte(i) // partition i
			b.Tasks = append(b.Tasks, tk)
		}
	}
	if err := p.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	for block, want := range map[uint16]uint64{1: blockA + 6, 0xabcd: blockB + 6, 7: 0} {
		if got, err := p.MaxIDInBlock(ctx, block); err != nil || got != want {
			t.Errorf("MaxIDInBlock(%#x) = %#x, %v; want %#x", block, got, err, want)
		}
	}
	// Block 1 is live; partitions 2, 3, 5 are ours: B's tasks 2, 3, 5.
	recs, err := p.Adoptable(ctx, []uint16{1}, []int{2, 3, 5}, 0, 10)
	var ids []uint64
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if want := []uint64{blockB + 2, blockB + 3, blockB + 5}; err != nil || !slices.Equal(ids, want) {
		t.Fatalf("Adoptable = %#x, %v; want %#x", ids, err, want)
	}
	if recs, _ := p.Adoptable(ctx, []uint16{1}, []int{2, 3, 5}, blockB+3, 1); len(recs) != 1 || recs[0].ID != blockB+5 {
		t.Errorf("Adoptable after B+3, limit 1 = %+v; want B+5", recs)
	}
	// B's task 3 finished meanwhile: it is not moved.
	if err := p.Commit(ctx, &Batch{Results: []task.Result{mkResult(blockB+3, messages.Class(0), base)}}); err != nil {
		t.Fatal(err)
	}
	n, err := p.MoveOut(ctx, ids, []uint64{blockA + 10, blockA + 11, blockA + 12}, base)
	if err != nil || n != 2 {
		t.Fatalf("MoveOut = %d, %v; want 2", n, err)
	}
	for _, id := range []uint64{blockB + 2, blockB + 5} {
		if _, ok := mustTask(t, p, id); ok {
			t.Errorf("moved task %#x still stored", id)
		}
	}
	if _, ok := mustTask(t, p, blockB+3); !ok {
		t.Errorf("finished task B+3 was removed by MoveOut")
	}
	if recs, _ := p.Adoptable(ctx, []uint16{1}, []int{2, 3, 5}, 0, 10); len(recs) != 0 {
		t.Errorf("adoptable after MoveOut = %+v; want none", recs)
	}
	if recs, _ := p.Adoptable(ctx, nil, []int{1}, 0, 10); len(recs) != 2 {
		t.Errorf("adoptable of partition 1 with no live block = %d tasks; want 2 (A+1, B+1)", len(recs))
	}
	// B+5 now runs as A+12; block A departs too and A+12 is adopted again
	// as B+20. MovedTo follows the chain and leaves out ids never moved
	// (B+3 finished in place, A+1 still pending).
	if err := p.Commit(ctx, &Batch{Tasks: []task.Record{mkTask(blockA+12, 0)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := p.MoveOut(ctx, []uint64{blockA + 12}, []uint64{blockB + 20}, base); err != nil || n != 1 {
		t.Fatalf("second MoveOut = %d, %v; want 1", n, err)
	}
	got, err := p.MovedTo(ctx, []uint64{blockB + 2, blockB + 5, blockB + 3, blockA + 1})
	want := map[uint64]uint64{blockB + 2: blockA + 10, blockB + 5: blockB + 20}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("MovedTo = %#x, %v; want %#x", got, err, want)
	}
}

// pgSchemaDDLV1 is schema version 1 as the build before version 2 created
// it (tasks without size and pin).
const pgSchemaDDLV1 = `
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
	pending      boolean  NOT NULL
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
CREATE TABLE IF NOT EXISTS {s}.moves (
	old_id   bigint PRIMARY KEY,
	new_id   bigint NOT NULL,
	moved_ns bigint NOT NULL
);
INSERT INTO {s}.meta (key, value) VALUES ('max_id', -9223372036854775808), ('schema_version', 1) ON CONFLICT (key) DO NOTHING;
`

// testPgMigrateV1: a schema of version 1 with rows in it is migrated at
// open; its rows read with Size and Pin derived from their requirements, and
// new rows keep theirs.
func testPgMigrateV1(t *testing.T, cfg PostgresConfig) {
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s := pgx.Identifier{cfg.Schema}.Sanitize()
	if _, err := conn.Exec(ctx, strings.ReplaceAll(pgSchemaDDLV1, "{s}", s)); err != nil {
		t.Fatalf("create schema v1: %v", err)
	}
	old := mkTask(1, messages.ClassNormal)
	old.Requirements = map[string]string{"gpu": "=1", messages.ReqSize: "=2.5", messages.ReqPin: "=exec-1"}
	plain := mkTask(2, messages.ClassNormal)
	for _, r := range []task.Record{old, plain} {
		req, err := requirementsJSON(r.Requirements)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+s+`.tasks (id, type, payload, priority, class, digest, requirements,
  max_attempts, attempts, submitted_ns, pending) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, true)`,
			pgID(r.ID), r.Type, r.Payload, r.Priority, int16(r.Class), r.Digest[:], req, r.MaxAttempts, r.Attempts, r.SubmittedAt); err != nil {
			t.Fatalf("insert v1 row: %v", err)
		}
	}
	p, err := OpenPostgres(ctx, cfg)
	if err != nil {
		t.Fatalf("OpenPostgres of a v1 schema: %v", err)
	}
	defer p.Close()
	var v int64
	if err := conn.QueryRow(ctx, "SELECT value FROM "+s+".meta WHERE key = 'schema_version'").Scan(&v); err != nil || v != pgSchemaVersion {
		t.Fatalf("schema_version after open = %d, %v; want %d", v, err, pgSchemaVersion)
	}
	old.Size, old.Pin = 2.5, "exec-1"
	for _, w := range []task.Record{old, plain} {
		if got, ok := mustTask(t, p, w.ID); !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("v1 row %d = %+v, %v; want %+v", w.ID, got, ok, w)
		}
	}
	// A row rewritten by this build has its columns set, whatever its
	// requirements say.
	fresh := mkTask(3, messages.ClassNormal)
	fresh.Size, fresh.Pin = 4, "exec-2"
	if err := p.Commit(ctx, &Batch{Tasks: []task.Record{fresh}}); err != nil {
		t.Fatal(err)
	}
	var size float64
	var pin string
	if err := conn.QueryRow(ctx, "SELECT size, pin FROM "+s+".tasks WHERE id = $1", pgID(3)).Scan(&size, &pin); err != nil || size != 4 || pin != "exec-2" {
		t.Errorf("new row: size %v, pin %q, %v", size, pin, err)
	}
	// Opening again changes nothing.
	p.Close()
	p2, err := OpenPostgres(ctx, cfg)
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	defer p2.Close()
	for _, w := range []task.Record{old, plain, fresh} {
		if got, ok := mustTask(t, p2, w.ID); !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("after reopen, task %d = %+v, %v; want %+v", w.ID, got, ok, w)
		}
	}
}
