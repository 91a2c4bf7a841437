package main

import (
	"strings"
	"testing"
)

// TestDemoHosts runs the demo's hosts part: three kinds of executors side
// by side, and flows with both sides, all checked by the demo itself.
func TestDemoHosts(t *testing.T) {
	var out strings.Builder
	if err := demoHosts(t.Context(), &out); err != nil {
		t.Fatalf("demoHosts: %v\n%s", err, out.String())
	}
	for _, want := range []string{"300 done, 300 runs", "200 of 200", `"posted":"posted acct-000`, "host lpar1 in the node-status table"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
