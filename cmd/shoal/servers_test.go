package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A two-node cluster: a worker attached to n2 shows in `shoal status` asked
// of n1 (the servers table joins every member's servers), with its
// resources and when it reported.
func TestStatusShowsClusterServers(t *testing.T) {
	c := startCluster(t, 2)
	c.worker(t, 1, "b", 2)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out string
	for {
		var err error
		out, err = runShoal(t, ctx, nil, "status", "--node", c.remotes[0])
		if err == nil && serversLine(out, "n2") != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("n1's status never listed n2's worker under SERVERS (%v):\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	line := serversLine(out, "n2")
	if !strings.Contains(out, "SERVER ") || !strings.Contains(line, " ago") || !strings.Contains(line, "%") {
		t.Fatalf("servers row without resources or a timestamp: %q\n%s", line, out)
	}
}

// serversLine is the SERVERS table row naming a worker reporting to node.
func serversLine(out, node string) string {
	_, table, ok := strings.Cut(out, "SERVER ")
	if !ok {
		return ""
	}
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if strings.Contains(l, "worker:") && len(f) > 8 && strings.Contains(f[8], node) {
			return l
		}
	}
	return ""
}
