// Package table is the instruction table between a node and its host agents
// (seed 003, S3.2): the node's bridge writes one instruction per task granted
// to it, a host agent takes it atomically, runs it and writes the result
// back, and the bridge reads the result. A second table, the node-status
// table, holds each host's resources as its agent last reported them.
//
// One interface, Table, two backends over the same schema and the same SQL:
// an embedded SQLite file (modernc.org/sqlite, pure Go; the default) and
// PostgreSQL, where a trigger NOTIFYs listeners of every insert and state
// change so waiters need not sit out a poll interval. docs/hosts.md has the
// schema, the protocol and the failure semantics.
//
// The package imports only the database drivers: it is storage, and knows
// neither the node nor the agent.
package table

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors. Callers test them with errors.Is; each is wrapped with the
// instruction, DSN or operation concerned.
var (
	// ErrBadDSN: the DSN cannot be parsed or names no known backend.
	ErrBadDSN = errors.New("hosts/table: bad DSN")
	// ErrUnavailable: the database cannot be reached or opened within
	// Config.ConnectTimeout (server down, wrong host or port, a SQLite file
	// in a missing directory, a file that is not a database).
	ErrUnavailable = errors.New("hosts/table: database unavailable")
	// ErrNotTaken: the instruction is not (or no longer) taken by this taker,
	// so a renewal or result is refused. This is the fencing answer: a late
	// result, a second result, or one from an agent whose lease expired.
	ErrNotTaken = errors.New("hosts/table: instruction not taken by this taker")
	// ErrInvalid: an instruction or request is malformed (missing field).
	ErrInvalid = errors.New("hosts/table: invalid request")
	// ErrClosed: the table was closed.
	ErrClosed = errors.New("hosts/table: closed")
)

// Kind is what an instruction asks of a host.
type Kind string

const (
	KindTask   Kind = "task"   // run a task of Type with Payload
	KindConfig Kind = "config" // change the agent's parameters (issue 13 item 6)
	KindOps    Kind = "ops"    // an operator's command
)

// State is where an instruction is in its life: new → taken → done | failed.
// A new or taken instruction can also be cancelled (failed, Error says why),
// and a taken one whose taker's lease expired is failed by Reap.
type State string

const (
	StateNew    State = "new"
	StateTaken  State = "taken"
	StateDone   State = "done"
	StateFailed State = "failed"
)

// Finished reports whether s is terminal.
func (s State) Finished() bool { return s == StateDone || s == StateFailed }

// Instruction is one row of the instruction table.
type Instruction struct {
	ID int64 // assigned by Put
	// Node is the node that wrote the instruction: task ids are a node's
	// (or a cluster's), so (Node, TaskID, Attempt) is unique for KindTask.
	Node    string
	TaskID  uint64 // the shoal task (KindTask)
	Attempt int32  // the task's attempt
	// Host is the target host name; empty: any host agent serving Type.
	Host    string
	Type    string // task type, matched against an agent's types
	Kind    Kind
	Payload []byte
	State   State
	// Taker is the agent instance holding the instruction (host/pid-random),
	// LeaseUntil when its lease ends unless renewed.
	Taker      string
	LeaseUntil time.Time
	Result     []byte // set when done
	Error      string // set when failed
	// Timestamps (the database's clock; zero when not reached).
	Created, Taken, Finished, Updated time.Time
}

// TakeRequest asks for up to Max new task instructions for an agent.
type TakeRequest struct {
	Host  string   // the agent's host name: it takes instructions for Host or for any host
	Taker string   // the agent instance id, recorded as the taker
	Types []string // task types the agent serves (at least one)
	Lease time.Duration
	Max   int
}

// HostStatus is one row of the node-status table: a host's resources as its
// agent last reported them.
type HostStatus struct {
	Host     string
	Agent    string   // the agent instance that reported
	Types    []string // the types it serves
	CPU      float64  // fraction of CPU busy since the previous report, 0–1
	Mem      float64  // fraction of memory in use, 0–1
	Disk     float64  // fraction of the work directory's file system in use, 0–1
	Procs    int      // processes on the host
	IP       string   // the host's first non-loopback address
	Running  int      // instructions the agent is running
	Reported time.Time
}

// Table is the instruction table and the node-status table. Every method is
// safe for concurrent use; ctx bounds each call.
type Table interface {
	// Put writes a new instruction. For KindTask, a second Put of the same
	// (Node, TaskID, Attempt) writes nothing and returns the existing row, so a
	// bridge that retries a Put never makes two instructions for one attempt.
	Put(ctx context.Context, in Instruction) (Instruction, error)
	// PutBatch is Put for many instructions, a few statements for all of
	// them; the rows come back in the order of ins.
	PutBatch(ctx context.Context, ins []Instruction) ([]Instruction, error)
	// Take atomically moves up to r.Max new task instructions for r.Host (or
	// for any host) of r.Types to taken by r.Taker, with a lease of r.Lease,
	// and returns them in id order. Two concurrent takers never get the
	// same instruction.
	Take(ctx context.Context, r TakeRequest) ([]Instruction, error)
	// Renew extends the lease of a taken instruction; ErrNotTaken when it is
	// no longer taken by taker (cancelled, or expired and reaped).
	Renew(ctx context.Context, id int64, taker string, lease time.Duration) error
	// Complete writes the result of a taken instruction: done with result if
	// failure is empty, failed with failure otherwise. ErrNotTaken when it is
	// no longer taken by taker: the result is not applied (fencing).
	Complete(ctx context.Context, id int64, taker string, result []byte, failure string) error
	// CompleteBatch is Complete for many instructions of one taker. The
	// error is the statement's; the slice has, per completion, nil when
	// applied or an ErrNotTaken when refused (fencing, as Complete).
	CompleteBatch(ctx context.Context, taker string, cs []Completion) ([]error, error)
	// Cancel fails a new or taken instruction with reason; false if it had
	// already finished.
	Cancel(ctx context.Context, id int64, reason string) (bool, error)
	// Reap fails every taken instruction whose lease has ended and returns
	// how many.
	Reap(ctx context.Context) (int, error)
	// Purge deletes the instructions that finished more than age ago and
	// returns how many: the table keeps answers only as long as a restarted
	// node may still ask for them.
	Purge(ctx context.Context, age time.Duration) (int, error)
	// Get returns the instructions with the given ids that exist.
	Get(ctx context.Context, ids ...int64) ([]Instruction, error)
	// Finished returns those of ids that are done or failed.
	Finished(ctx context.Context, ids []int64) ([]Instruction, error)
	// FinishedSince returns node's instructions that finished at or after
	// since (the database's clock), by an index: what a bridge with
	// thousands of instructions in flight reads instead of looking each up.
	// The rows carry what a result needs (ID, TaskID, Attempt, State,
	// Taker, Result, Error, Finished), not the payload.
	FinishedSince(ctx context.Context, node string, since time.Time) ([]Instruction, error)

	// PutStatus writes a host's status (one row per host, replaced).
	PutStatus(ctx context.Context, s HostStatus) error
	// Statuses returns every host's last status, by host name.
	Statuses(ctx context.Context) ([]HostStatus, error)

	// Subscribe returns a channel that receives (coalesced, never blocking
	// the writer) whenever the table may have changed: on PostgreSQL every
	// insert or state change by anyone (LISTEN/NOTIFY); on SQLite the writes
	// made through this handle at once, and those of other processes and
	// handles within Config.Watch (PRAGMA data_version).
	// Call the returned func to unsubscribe.
	Subscribe() (<-chan struct{}, func())
	// Backend is "sqlite" or "postgres".
	Backend() string
	Close() error
}

// Config opens a table.
type Config struct {
	// DSN names the database: a postgres:// or postgresql:// URL for
	// PostgreSQL; sqlite:PATH, sqlite://PATH, file:PATH or a plain file
	// path for SQLite (the file is created, its directory must exist).
	DSN string
	// Schema is the PostgreSQL schema holding the tables (created if
	// missing). Default "shoal_hosts". Unused by SQLite.
	Schema string
	// ConnectTimeout bounds Open: connecting, and creating the schema.
	// Default 5 s.
	ConnectTimeout time.Duration
	// BusyTimeout is how long a SQLite writer waits for another process's
	// write lock before failing. Default 10 s.
	BusyTimeout time.Duration
	// MaxConns bounds the connection pool. Default 8 (SQLite: 1 writer
	// connection is used regardless; see sqlite.go).
	MaxConns int
	// Watch is how often a SQLite handle checks whether another process
	// wrote to the file (PRAGMA data_version), to wake its subscribers
	// without waiting for their poll: SQLite's stand-in for NOTIFY. Only
	// while someone subscribes. Default 10 ms; 0 turns it off. Unused by
	// PostgreSQL, which notifies.
	Watch time.Duration
}

// DefaultConfig returns the defaults for dsn.
func DefaultConfig(dsn string) Config {
	return Config{DSN: dsn, Schema: "shoal_hosts", ConnectTimeout: 5 * time.Second, BusyTimeout: 10 * time.Second, MaxConns: 8, Watch: 10 * time.Millisecond}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.DSN == "":
		return fmt.Errorf("%w: Config.DSN is empty (a postgres:// URL or a SQLite file path)", ErrBadDSN)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("hosts/table: Config.ConnectTimeout must be > 0 (default 5s), got %v", c.ConnectTimeout)
	case c.BusyTimeout <= 0:
		return fmt.Errorf("hosts/table: Config.BusyTimeout must be > 0 (default 10s), got %v", c.BusyTimeout)
	case c.Watch < 0:
		return fmt.Errorf("hosts/table: Config.Watch must be >= 0 (default 10ms, 0: off), got %v", c.Watch)
	case c.MaxConns <= 0:
		return fmt.Errorf("hosts/table: Config.MaxConns must be > 0 (default 8), got %d", c.MaxConns)
	}
	return nil
}

// Open opens (creating the schema if needed) the table cfg.DSN names. A bad
// DSN fails with ErrBadDSN, a database that cannot be reached within
// cfg.ConnectTimeout with ErrUnavailable.
func Open(ctx context.Context, cfg Config) (Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Schema == "" {
		cfg.Schema = "shoal_hosts"
	}
	backend, target, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	switch backend {
	case "postgres":
		return openPostgres(ctx, cfg, target)
	default:
		return openSQLite(ctx, cfg, target)
	}
}

// OpenDSN opens the table dsn names with the default configuration.
func OpenDSN(ctx context.Context, dsn string) (Table, error) { return Open(ctx, DefaultConfig(dsn)) }
