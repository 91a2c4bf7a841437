package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/shoalrt/shoal/messages"
)

// TestVersion: `shoal version` and `shoal --version` print the same line,
// naming the binary and the wire protocol it speaks.
func TestVersion(t *testing.T) {
	run := func(args ...string) string {
		var out bytes.Buffer
		cmd := root()
		cmd.SetOut(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("shoal %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	v, flag := run("version"), run("--version")
	if v != flag {
		t.Errorf("version %q and --version %q differ", v, flag)
	}
	if !strings.HasPrefix(v, "shoal ") || !strings.Contains(v, fmt.Sprintf("protocol %d", messages.ProtocolVersion)) {
		t.Errorf("version %q does not name shoal and protocol %d", v, messages.ProtocolVersion)
	}
}
