package table_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalrt/shoal/hosts/table"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://u@h/db", "sqlite:", "sqlite:x.db?mode=ro", "postgres://u@h:notaport/db"} {
		if _, err := table.OpenDSN(t.Context(), dsn); !errors.Is(err, table.ErrBadDSN) {
			t.Errorf("Open(%q) = %v, want ErrBadDSN", dsn, err)
		}
	}
}

func TestSQLiteUnavailable(t *testing.T) {
	dir := t.TempDir()
	if _, err := table.OpenDSN(t.Context(), filepath.Join(dir, "missing", "hosts.db")); !errors.Is(err, table.ErrUnavailable) {
		t.Errorf("Open in a missing directory = %v, want ErrUnavailable", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("this is not a database, it is a text file of some length........................................."), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := table.OpenDSN(t.Context(), junk); !errors.Is(err, table.ErrUnavailable) {
		t.Errorf("Open of a file that is not a database = %v, want ErrUnavailable", err)
	}
}

// TestSilentServerTimesOut: a server that accepts the connection and never
// answers (a hung database, a firewall that swallows packets) fails Open
// after ConnectTimeout instead of hanging.
func TestSilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	defer func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	cfg := table.DefaultConfig("postgres://u@" + l.Addr().String() + "/db?sslmode=disable")
	cfg.ConnectTimeout = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() { _, err := table.Open(t.Context(), cfg); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, table.ErrUnavailable) {
			t.Fatalf("Open of a silent server = %v, want ErrUnavailable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Open of a silent server hangs")
	}
}
