package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCancelCommand: `shoal cancel` cancels a queued task (no worker runs
// its type), reports an id the node never accepted as unknown, and `shoal
// wait` then sees the task cancelled.
func TestCancelCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	startProc(t, filepath.Join(tmp, "node.log"), "listening on", "node", "--data", filepath.Join(tmp, "data"), "--listen", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code := runCLI(t, ctx, "submit", "--node", addr, "--type", "nobody-runs-this", "--payload", "x")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	out, errOut, code = runCLI(t, ctx, "cancel", "--node", addr, id, "999999999")
	if code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], id) || !strings.Contains(lines[1], "cancelled") || !strings.Contains(lines[2], "unknown") {
		t.Fatalf("cancel printed %q, want a header, %s cancelled and 999999999 unknown", out, id)
	}
	out, _, code = runCLI(t, ctx, "wait", "--node", addr, id, "--timeout", "30s")
	if code != exitTaskFailed || !strings.Contains(out, "cancelled") {
		t.Fatalf("wait after cancel: exit %d, %q; want exit %d and cancelled", code, out, exitTaskFailed)
	}
	if _, errOut, code := runCLI(t, ctx, "cancel", "--node", addr, "not-an-id"); code == 0 || !strings.Contains(errOut, "not a task id") {
		t.Fatalf("cancel of a bad id: exit %d, %q", code, errOut)
	}
}
