package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// shoalBinary builds the shoal binary once per test run.
func shoalBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func freeAddr(t *testing.T) string {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		// The kernel may hand a just-closed port out again; a test that
		// takes several addresses before starting anything needs them
		// distinct.
		if !handed[addr] {
			handed[addr] = true
			return addr
		}
	}
}

// handed are the addresses freeAddr returned in this test binary.
var (
	handedMu sync.Mutex
	handed   = map[string]bool{}
)

// proc is a shoal process under test.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc runs the binary and waits until a line of its stdout contains
// ready. Its stderr goes to the test log file logPath.
func startProc(t *testing.T, logPath, ready string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(shoalBinary(t), args...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(found) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case <-found:
	case <-p.done:
		t.Fatalf("%v exited before it was ready; see %s", args, logPath)
	case <-time.After(30 * time.Second):
		t.Fatalf("%v not ready after 30 s; see %s", args, logPath)
	}
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// runShoal runs a short command and returns its stdout.
func runShoal(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, shoalBinary(t), args...)
	cmd.Stdin = stdin
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Logf("shoal %v: %v\n%s", args, err, errb.String())
	}
	return string(out), err
}
