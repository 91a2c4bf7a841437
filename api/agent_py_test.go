package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shoalrt/shoal/api"
	"github.com/shoalrt/shoal/node"
)

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPythonAgent runs deploy/agents/agent.py against e. It skips when
// python3 is missing, unless CI=true.
func startPythonAgent(t *testing.T, e *env, id string, extra ...string) *syncBuffer {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not found; the HTTP agent example is not exercised")
	}
	script, err := filepath.Abs("../deploy/agents/agent.py")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{script, "--url", e.url, "--api-token", e.tok, "--token", "exec-tok", "--id", id,
		"--types", "py.upper,py.sha256,py.fail", "--slots", "3"}, extra...)
	cmd := exec.Command(py, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent.py output:\n%s", out)
		}
	})
	return out
}

// The example agent in another language runs real tasks through a real
// node: the outputs can only have come from Python.
func TestPythonAgent(t *testing.T) {
	e := start(t, withExecToken, nil)
	out := startPythonAgent(t, e, "py-test")
	var tasks []map[string]any
	for i := range 20 {
		tasks = append(tasks, map[string]any{"type": "py.sha256", "payload": fmt.Sprintf("payload-%d", i)})
	}
	tasks = append(tasks,
		map[string]any{"type": "py.upper", "payload": "shoal"},
		map[string]any{"type": "py.fail", "payload": "x"})
	idl := e.submit(tasks...)
	res := e.waitDone(idl...)
	for i := range 20 {
		sum := sha256.Sum256(fmt.Appendf(nil, "payload-%d", i))
		if o := res[i]; o.State != "done" || o.Output == nil || *o.Output != hex.EncodeToString(sum[:]) {
			t.Fatalf("task %d: %+v, want the SHA-256 computed by agent.py", i, o)
		}
	}
	if o := res[20]; o.State != "done" || *o.Output != "SHOAL" {
		t.Fatalf("py.upper: %+v", o)
	}
	if o := res[21]; o.State != "dead" || !strings.Contains(o.Error, "raised in agent.py") || o.Attempts != 1 {
		t.Fatalf("py.fail: %+v, want dead after one attempt with the Python error", o)
	}
	var st api.StatusOut
	e.do("GET", "/v1/status", nil, &st)
	if !slices.ContainsFunc(st.Executors, func(x api.ExecutorOut) bool { return x.ID == "py-test" && x.Slots == 3 }) {
		t.Fatalf("status executors %+v, want py-test", st.Executors)
	}
	if !strings.Contains(out.String(), "agent py-test registered") {
		t.Fatalf("agent output %q", out.String())
	}
}

// A wrong executor token stops the Python agent with the node's refusal.
func TestPythonAgentRefused(t *testing.T) {
	e := start(t, func(c *node.Config) { c.Token = "other" }, nil)
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("python3 not found")
	}
	script, _ := filepath.Abs("../deploy/agents/agent.py")
	cmd := exec.Command("python3", script, "--url", e.url, "--api-token", e.tok, "--token", "exec-tok", "--id", "py-x")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "unauthorized") {
		t.Fatalf("agent.py with a wrong token: err %v output %q, want exit with unauthorized", err, b)
	}
}
