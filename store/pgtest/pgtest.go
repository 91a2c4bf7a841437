// Package pgtest starts a throwaway PostgreSQL server for tests: initdb and
// pg_ctl into a fresh temp directory, listening on a free loopback port, with
// trust authentication, stopped and removed when the test ends.
//
// The binaries are looked up on PATH, then under /usr/lib/postgresql/*/bin
// (Debian's layout, newest major first). Without them a test is skipped,
// unless CI=true, where it fails: CI must run these tests (.ci/run installs
// the postgresql package).
//
// initdb and postgres refuse to run as root. When the test runs as root the
// server runs as the "postgres" system user (uid and gid set on the child
// processes), in a temp directory that user owns.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int
	bin  string // directory of initdb, pg_ctl
	dir  string // temp dir: data/, log, socket
	cred *syscall.Credential
	dbs  atomic.Int64
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		unavailable(t, err)
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err))
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// A directory directly under the system temp dir (world-traversable),
	// not t.TempDir(), whose parents are private to this user.
	s.dir, err = os.MkdirTemp("", "shoal-pg-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(s.dir) })
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatalf("pgtest: chown %s to the postgres user: %v", s.dir, err)
		}
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	// A free port can be taken between choosing and binding it: try again.
	for attempt := 1; ; attempt++ {
		s.Port = freePort(t)
		opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c max_connections=60 -c shared_buffers=32MB", s.Port, s.dir)
		out, err := s.run("pg_ctl", "start", "-D", data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "-o", opts)
		if err == nil {
			break
		}
		if attempt == 3 {
			logText, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			t.Fatalf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, logText)
		}
	}
	t.Cleanup(func() {
		if out, err := s.run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"); err != nil {
			t.Logf("pgtest: pg_ctl stop: %v\n%s", err, out)
		}
	})
	return s
}

// URL returns the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.URL(name)
}

// run runs a PostgreSQL program from s.bin, as the postgres user when root.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// findBin returns the directory holding initdb and pg_ctl.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major first: compare the version directory numerically.
	major := func(d string) int {
		n, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(d)), ".")[0])
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) })
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found on PATH nor under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// unavailable skips t, or fails it under CI=true.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL is required in CI: %v", err)
	}
	t.Skipf("pgtest: PostgreSQL unavailable, test skipped: %v", err)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
