package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/node"
)

// TestPerTypeFlags: --task-timeout and --dedupe-window-type land in the
// node's config; a bad duration is refused naming the flag and the type.
func TestPerTypeFlags(t *testing.T) {
	cfg := node.DefaultConfig(t.TempDir())
	tf := timeoutFlags{perType: map[string]string{"resize": "30s"}, windows: map[string]string{"report": "24h", "ping": "0s"}}
	if err := tf.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Intake.Timeouts["resize"] != 30*time.Second || cfg.Dedupe.TypeWindows["report"] != 24*time.Hour || cfg.Dedupe.TypeWindows["ping"] != 0 {
		t.Fatalf("timeouts %v, windows %v", cfg.Intake.Timeouts, cfg.Dedupe.TypeWindows)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a 24 h window within the default 24 h retention: %v", err)
	}
	cfg.Dedupe.TypeWindows["report"] = 48 * time.Hour
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "longest dedupe window (48h0m0s)") {
		t.Fatalf("a 48 h window past the 24 h retention: %v, want an error naming it", err)
	}
	bad := timeoutFlags{windows: map[string]string{"report": "soon"}}
	if err := bad.apply(&cfg); err == nil || !strings.Contains(err.Error(), "--dedupe-window-type report=soon") {
		t.Fatalf("bad window: %v", err)
	}
}
