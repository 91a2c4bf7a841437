package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dialect is what differs between the backends; the SQL is otherwise one.
// Queries are written with $N placeholders, {t} for the table-name prefix
// and {now} for the database clock in unix milliseconds.
type dialect struct {
	name       string
	prefix     string // "shoal_hosts." (PostgreSQL schema) or ""
	now        string // an expression: the clock in unix ms
	skipLocked string // appended to the take's inner SELECT
	numbered   bool   // $N → ?N (SQLite's numbered parameters)
	blob       string // the binary column type: BLOB or BYTEA
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

func (d dialect) q(query string) string {
	query = strings.NewReplacer("{t}", d.prefix, "{now}", d.now, "{skip}", d.skipLocked).Replace(query)
	if d.numbered {
		query = placeholder.ReplaceAllString(query, "?$1")
	}
	return query
}

// qSeq is q for a statement whose parameters appear in order, each once
// ($1, $2, ...): SQLite gets plain ? parameters, since looking up a
// numbered one (?N) walks a list of all of them, quadratic in a statement
// of thousands.
func (d dialect) qSeq(query string) string {
	if !d.numbered {
		return d.q(query)
	}
	query = strings.NewReplacer("{t}", d.prefix, "{now}", d.now, "{skip}", d.skipLocked).Replace(query)
	return placeholder.ReplaceAllString(query, "?")
}

const cols = `id, node, task_id, attempt, host, type, kind, payload, state, taker, lease_until, result, error, created_at, taken_at, finished_at, updated_at`

// sqlTable is Table over database/sql: both backends.
type sqlTable struct {
	db      *sql.DB
	d       dialect
	hub     hub
	onClose func() // the PostgreSQL listener's stop
	once    sync.Once
	closed  chan struct{}

	put, putGet, renew, complete, cancel, reap, purge, putStatus, statuses string

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared batch statements, by text (see query)
	texts  map[string]string    // batch statement texts, by shape (see text)
}

// text returns the statement of a shape (say "put/512"), built once.
func (t *sqlTable) text(shape string, build func() string) string {
	t.stmtMu.Lock()
	q, ok := t.texts[shape]
	t.stmtMu.Unlock()
	if ok {
		return q
	}
	q = build()
	t.stmtMu.Lock()
	if t.texts == nil {
		t.texts = map[string]string{}
	}
	if len(t.texts) < maxStmts {
		t.texts[shape] = q
	}
	t.stmtMu.Unlock()
	return q
}

// maxStmts bounds the prepared statements a handle keeps: batch shapes are
// powers of two (padRows), so a handle needs a few dozen.
const maxStmts = 256

// query runs q as a prepared statement kept for the handle's life: batch
// statements are long, and parsing one again for every batch costs more
// than running it.
func (t *sqlTable) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.stmtMu.Lock()
	st := t.stmts[q]
	t.stmtMu.Unlock()
	if st == nil {
		var err error
		if st, err = t.db.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
		t.stmtMu.Lock()
		switch old := t.stmts[q]; {
		case old != nil:
			_ = st.Close()
			st = old
		case len(t.stmts) < maxStmts:
			if t.stmts == nil {
				t.stmts = map[string]*sql.Stmt{}
			}
			t.stmts[q] = st
		default:
			t.stmtMu.Unlock()
			defer st.Close()
			return st.QueryContext(ctx, args...)
		}
		t.stmtMu.Unlock()
	}
	return st.QueryContext(ctx, args...)
}

// padRows is the row count a batch of n is written as: the next power of
// two (the last row repeated, which every batch statement tolerates), so a
// handle prepares one statement per power, not one per size.
func padRows(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

func newSQLTable(db *sql.DB, d dialect) *sqlTable {
	t := &sqlTable{db: db, d: d, closed: make(chan struct{})}
	t.put = d.q(`INSERT INTO {t}instructions (node, task_id, attempt, host, type, kind, payload, state, created_at, updated_at)
		VALUES ($7, $1, $2, $3, $4, $5, $6, 'new', {now}, {now})
		ON CONFLICT (node, task_id, attempt) WHERE kind = 'task' DO NOTHING RETURNING ` + cols)
	t.putGet = d.q(`SELECT ` + cols + ` FROM {t}instructions WHERE kind = 'task' AND node = $3 AND task_id = $1 AND attempt = $2`)
	t.renew = d.q(`UPDATE {t}instructions SET lease_until = {now} + $3, updated_at = {now}
		WHERE id = $1 AND state = 'taken' AND taker = $2`)
	t.complete = d.q(`UPDATE {t}instructions SET state = $3, result = $4, error = $5, finished_at = {now}, updated_at = {now}
		WHERE id = $1 AND state = 'taken' AND taker = $2`)
	t.cancel = d.q(`UPDATE {t}instructions SET state = 'failed', error = $2, finished_at = {now}, updated_at = {now}
		WHERE id = $1 AND state IN ('new', 'taken')`)
	t.reap = d.q(`UPDATE {t}instructions SET state = 'failed', error = 'lease expired: taker ' || taker || ' stopped renewing (host agent dead or cut off)',
		finished_at = {now}, updated_at = {now} WHERE state = 'taken' AND lease_until < {now}`)
	t.purge = d.q(`DELETE FROM {t}instructions WHERE state IN ('done', 'failed') AND finished_at < {now} - $1`)
	t.putStatus = d.q(`INSERT INTO {t}host_status (host, agent, types, cpu, mem, disk, procs, ip, running, reported_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {now})
		ON CONFLICT (host) DO UPDATE SET agent = excluded.agent, types = excluded.types, cpu = excluded.cpu, mem = excluded.mem,
		disk = excluded.disk, procs = excluded.procs, ip = excluded.ip, running = excluded.running, reported_at = excluded.reported_at`)
	t.statuses = d.q(`SELECT host, agent, types, cpu, mem, disk, procs, ip, running, reported_at FROM {t}host_status ORDER BY host`)
	return t
}

func (t *sqlTable) Backend() string { return t.d.name }

func (t *sqlTable) Subscribe() (<-chan struct{}, func()) { return t.hub.subscribe() }

func (t *sqlTable) Close() error {
	var err error
	t.once.Do(func() {
		close(t.closed)
		if t.onClose != nil {
			t.onClose()
		}
		t.stmtMu.Lock()
		for _, st := range t.stmts {
			_ = st.Close()
		}
		t.stmts = nil
		t.stmtMu.Unlock()
		err = t.db.Close()
	})
	return err
}

// wrap adds the operation and turns a closed pool into ErrClosed.
func (t *sqlTable) wrap(op string, err error) error {
	select {
	case <-t.closed:
		return fmt.Errorf("hosts/table: %s: %w", op, ErrClosed)
	default:
	}
	return fmt.Errorf("hosts/table: %s (%s): %w", op, t.d.name, err)
}

func (t *sqlTable) Put(ctx context.Context, in Instruction) (Instruction, error) {
	if in.Kind == "" {
		in.Kind = KindTask
	}
	switch {
	case in.Kind != KindTask && in.Kind != KindConfig && in.Kind != KindOps:
		return Instruction{}, fmt.Errorf("%w: instruction kind %q (want task, config or ops)", ErrInvalid, in.Kind)
	case in.Kind == KindTask && (in.TaskID == 0 || in.Attempt < 1 || in.Type == ""):
		return Instruction{}, fmt.Errorf("%w: a task instruction needs TaskID, Attempt >= 1 and Type (got %d, %d, %q)", ErrInvalid, in.TaskID, in.Attempt, in.Type)
	case in.Kind != KindTask && in.Host == "":
		return Instruction{}, fmt.Errorf("%w: a %s instruction needs a target Host", ErrInvalid, in.Kind)
	}
	payload := in.Payload
	if payload == nil {
		payload = []byte{}
	}
	rows, err := t.db.QueryContext(ctx, t.put, int64(in.TaskID), in.Attempt, in.Host, in.Type, string(in.Kind), payload, in.Node)
	if err != nil {
		return Instruction{}, t.wrap("put instruction", err)
	}
	got, err := scanAll(rows)
	if err != nil {
		return Instruction{}, t.wrap("put instruction", err)
	}
	if len(got) == 1 {
		t.hub.wake()
		return got[0], nil
	}
	// The attempt has its instruction already: return it.
	rows, err = t.db.QueryContext(ctx, t.putGet, int64(in.TaskID), in.Attempt, in.Node)
	if err != nil {
		return Instruction{}, t.wrap("read existing instruction", err)
	}
	if got, err = scanAll(rows); err != nil || len(got) != 1 {
		return Instruction{}, t.wrap("read existing instruction", errors.Join(err, fmt.Errorf("task %d attempt %d: %d rows", in.TaskID, in.Attempt, len(got))))
	}
	return got[0], nil
}

func (t *sqlTable) Take(ctx context.Context, r TakeRequest) ([]Instruction, error) {
	switch {
	case r.Taker == "" || len(r.Types) == 0 || r.Max < 1 || r.Lease <= 0:
		return nil, fmt.Errorf("%w: take needs a Taker, Types, Max >= 1 and Lease > 0 (got %q, %v, %d, %v)", ErrInvalid, r.Taker, r.Types, r.Max, r.Lease)
	}
	args := []any{r.Taker, r.Lease.Milliseconds(), r.Host, r.Max}
	for _, typ := range r.Types {
		args = append(args, typ)
	}
	// The CTE picks, the UPDATE claims. MATERIALIZED runs the pick once:
	// a subquery under IN may be rescanned by PostgreSQL's planner, and
	// with SKIP LOCKED each rescan picks other rows, past LIMIT. The state
	// check is repeated in the UPDATE because PostgreSQL re-evaluates it on
	// the row version it locks. SQLite runs the statement under its write
	// lock.
	q := t.text(fmt.Sprintf("take/%d", len(r.Types)), func() string {
		in := make([]string, len(r.Types))
		for i := range r.Types {
			in[i] = "$" + strconv.Itoa(5+i)
		}
		return t.d.q(`WITH picked AS MATERIALIZED (SELECT id AS pick FROM {t}instructions
			WHERE state = 'new' AND kind = 'task' AND (host = '' OR host = $3) AND type IN (` + strings.Join(in, ", ") + `)
			ORDER BY id LIMIT $4{skip})
		UPDATE {t}instructions SET state = 'taken', taker = $1, lease_until = {now} + $2, taken_at = {now}, updated_at = {now}
		WHERE state = 'new' AND id IN (SELECT pick FROM picked)
		RETURNING ` + takeCols)
	})
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, t.wrap("take instructions", err)
	}
	got, err := scanTaken(rows, r.Taker)
	if err != nil {
		return nil, t.wrap("take instructions", err)
	}
	slices.SortFunc(got, func(a, b Instruction) int { return int(a.ID - b.ID) })
	return got, nil
}

func (t *sqlTable) Renew(ctx context.Context, id int64, taker string, lease time.Duration) error {
	res, err := t.db.ExecContext(ctx, t.renew, id, taker, lease.Milliseconds())
	if err != nil {
		return t.wrap("renew lease", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: instruction %d, taker %s", ErrNotTaken, id, taker)
	}
	return nil
}

func (t *sqlTable) Complete(ctx context.Context, id int64, taker string, result []byte, failure string) error {
	state := StateDone
	if failure != "" {
		state, result = StateFailed, nil
	}
	if result == nil {
		result = []byte{}
	}
	res, err := t.db.ExecContext(ctx, t.complete, id, taker, string(state), result, failure)
	if err != nil {
		return t.wrap("complete instruction", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: instruction %d, taker %s: result not applied", ErrNotTaken, id, taker)
	}
	t.hub.wake()
	return nil
}

func (t *sqlTable) Cancel(ctx context.Context, id int64, reason string) (bool, error) {
	if reason == "" {
		reason = "cancelled"
	}
	res, err := t.db.ExecContext(ctx, t.cancel, id, reason)
	if err != nil {
		return false, t.wrap("cancel instruction", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		t.hub.wake()
	}
	return n > 0, nil
}

func (t *sqlTable) Reap(ctx context.Context) (int, error) {
	res, err := t.db.ExecContext(ctx, t.reap)
	if err != nil {
		return 0, t.wrap("reap expired leases", err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		t.hub.wake()
	}
	return int(n), nil
}

func (t *sqlTable) Purge(ctx context.Context, age time.Duration) (int, error) {
	res, err := t.db.ExecContext(ctx, t.purge, age.Milliseconds())
	if err != nil {
		return 0, t.wrap("purge finished instructions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *sqlTable) Get(ctx context.Context, ids ...int64) ([]Instruction, error) {
	return t.byIDs(ctx, "get instructions", ids, "")
}

func (t *sqlTable) FinishedSince(ctx context.Context, node string, since time.Time) ([]Instruction, error) {
	q := t.text("finished-since", func() string {
		return t.d.q(`SELECT id, task_id, attempt, state, taker, result, error, finished_at FROM {t}instructions
			WHERE node = $1 AND finished_at >= $2 AND state IN ('done', 'failed')`)
	})
	rows, err := t.query(ctx, q, node, since.UnixMilli())
	if err != nil {
		return nil, t.wrap("read finished instructions", err)
	}
	defer rows.Close()
	var out []Instruction
	for rows.Next() {
		in := Instruction{Node: node, Kind: KindTask}
		var taskID, fin int64
		var state string
		if err := rows.Scan(&in.ID, &taskID, &in.Attempt, &state, &in.Taker, &in.Result, &in.Error, &fin); err != nil {
			return nil, t.wrap("read finished instructions", err)
		}
		in.TaskID, in.State, in.Finished, in.Updated = uint64(taskID), State(state), ms(fin), ms(fin)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap("read finished instructions", err)
	}
	return out, nil
}

func (t *sqlTable) Finished(ctx context.Context, ids []int64) ([]Instruction, error) {
	// (state || '') keeps the planner on the primary key: an index on state
	// would read every finished row.
	return t.byIDs(ctx, "read finished instructions", ids, " AND (state || '') IN ('done', 'failed')")
}

// byIDs reads ids in chunks (SQLite allows 32,766 parameters; chunks keep
// each statement small on both).
func (t *sqlTable) byIDs(ctx context.Context, op string, ids []int64, cond string) ([]Instruction, error) {
	var out []Instruction
	for chunk := range slices.Chunk(ids, 512) {
		n := padRows(len(chunk))
		args := make([]any, n)
		for i := range n {
			args[i] = chunk[min(i, len(chunk)-1)]
		}
		q := t.text(fmt.Sprintf("ids/%d/%s", n, cond), func() string {
			in := make([]string, n)
			for i := range n {
				in[i] = "$" + strconv.Itoa(i+1)
			}
			return t.d.qSeq(`SELECT ` + cols + ` FROM {t}instructions WHERE id IN (` + strings.Join(in, ", ") + `)` + cond + ` ORDER BY id`)
		})
		rows, err := t.query(ctx, q, args...)
		if err != nil {
			return nil, t.wrap(op, err)
		}
		got, err := scanAll(rows)
		if err != nil {
			return nil, t.wrap(op, err)
		}
		out = append(out, got...)
	}
	return out, nil
}

func (t *sqlTable) PutStatus(ctx context.Context, s HostStatus) error {
	if s.Host == "" {
		return fmt.Errorf("%w: a host status needs Host", ErrInvalid)
	}
	_, err := t.db.ExecContext(ctx, t.putStatus, s.Host, s.Agent, strings.Join(s.Types, ","), s.CPU, s.Mem, s.Disk, s.Procs, s.IP, s.Running)
	if err != nil {
		return t.wrap("put host status", err)
	}
	return nil
}

func (t *sqlTable) Statuses(ctx context.Context) ([]HostStatus, error) {
	rows, err := t.db.QueryContext(ctx, t.statuses)
	if err != nil {
		return nil, t.wrap("read host statuses", err)
	}
	defer rows.Close()
	var out []HostStatus
	for rows.Next() {
		var s HostStatus
		var types string
		var at int64
		if err := rows.Scan(&s.Host, &s.Agent, &types, &s.CPU, &s.Mem, &s.Disk, &s.Procs, &s.IP, &s.Running, &at); err != nil {
			return nil, t.wrap("read host statuses", err)
		}
		if types != "" {
			s.Types = strings.Split(types, ",")
		}
		s.Reported = ms(at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, t.wrap("read host statuses", err)
	}
	return out, nil
}

func ms(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// takeCols are what a taker needs of the rows it takes: a row is 17
// columns, and converting each costs more than the statement's work.
const takeCols = `id, node, task_id, attempt, host, type, kind, payload, lease_until, taken_at`

func scanTaken(rows *sql.Rows, taker string) ([]Instruction, error) {
	defer rows.Close()
	var out []Instruction
	for rows.Next() {
		in := Instruction{State: StateTaken, Taker: taker}
		var taskID, lease, taken int64
		var kind string
		if err := rows.Scan(&in.ID, &in.Node, &taskID, &in.Attempt, &in.Host, &in.Type, &kind, &in.Payload, &lease, &taken); err != nil {
			return nil, err
		}
		in.TaskID, in.Kind, in.LeaseUntil, in.Taken, in.Updated = uint64(taskID), Kind(kind), ms(lease), ms(taken), ms(taken)
		out = append(out, in)
	}
	return out, rows.Err()
}

func scanAll(rows *sql.Rows) ([]Instruction, error) {
	defer rows.Close()
	var out []Instruction
	for rows.Next() {
		var in Instruction
		var taskID, lease, created, taken, finished, updated int64
		var kind, state string
		if err := rows.Scan(&in.ID, &in.Node, &taskID, &in.Attempt, &in.Host, &in.Type, &kind, &in.Payload, &state, &in.Taker,
			&lease, &in.Result, &in.Error, &created, &taken, &finished, &updated); err != nil {
			return nil, err
		}
		in.TaskID, in.Kind, in.State = uint64(taskID), Kind(kind), State(state)
		in.LeaseUntil, in.Created, in.Taken, in.Finished, in.Updated = ms(lease), ms(created), ms(taken), ms(finished), ms(updated)
		out = append(out, in)
	}
	return out, rows.Err()
}

// hub fans a change signal out to subscribers without ever blocking.
type hub struct {
	mu   sync.Mutex
	next int
	subs map[int]chan struct{}
}

func (h *hub) subscribe() (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[int]chan struct{}{}
	}
	id := h.next
	h.next++
	ch := make(chan struct{}, 1)
	h.subs[id] = ch
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

func (h *hub) subscribed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *hub) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
