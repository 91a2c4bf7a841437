package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A real `shoal node --http` process, a real Python agent process, and a
// client speaking plain HTTP: the results can only have come from Python.
func TestNodeHTTPAPIWithPythonAgent(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required in CI: %v", err)
		}
		t.Skip("python3 not found")
	}
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	startProc(t, filepath.Join(dir, "node.log"), "listening on", "node", "--data", filepath.Join(dir, "data"),
		"--listen", freeAddr(t), "--http", httpAddr, "--api-token", "api-tok", "--token", "exec-tok")

	call := func(tok, method, path string, body any, out any) int {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(raw))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	if code := call("", "POST", "/v1/tasks", map[string]any{"tasks": []any{map[string]any{"type": "py.sha256"}}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("submit without token: %d, want 401", code)
	}

	agent := exec.Command(py, "../../deploy/agents/agent.py", "--url", base, "--api-token", "api-tok",
		"--token", "exec-tok", "--id", "py-proc", "--types", "py.sha256", "--slots", "2")
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent.Stdout, agent.Stderr = logf, logf
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait(); logf.Close() })

	var ack struct {
		IDs []uint64 `json:"ids"`
	}
	if code := call("api-tok", "POST", "/v1/tasks", map[string]any{"tasks": []any{
		map[string]any{"type": "py.sha256", "payload": "one"}, map[string]any{"type": "py.sha256", "payload": "two"},
	}}, &ack); code != http.StatusCreated || len(ack.IDs) != 2 {
		t.Fatalf("submit: %d %v", code, ack)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var w struct {
			Outcomes []struct {
				State  string `json:"state"`
				Output string `json:"output"`
			} `json:"outcomes"`
			Done bool `json:"done"`
		}
		if code := call("api-tok", "POST", "/v1/tasks/wait", map[string]any{"ids": ack.IDs, "timeout_ms": 5000}, &w); code != 200 {
			t.Fatalf("wait: %d", code)
		}
		if !w.Done {
			continue
		}
		for i, p := range []string{"one", "two"} {
			sum := sha256.Sum256([]byte(p))
			if w.Outcomes[i].State != "done" || w.Outcomes[i].Output != hex.EncodeToString(sum[:]) {
				t.Fatalf("task %d: %+v", i, w.Outcomes[i])
			}
		}
		return
	}
	log, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	t.Fatalf("tasks not done within 60 s; agent log:\n%s", log)
}
