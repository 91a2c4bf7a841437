package main

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// Two node processes join by gossip (encrypted) and each one's status lists
// both members with their remote addresses; a third with the wrong key is
// refused and exits with an error.
func TestNodesJoinByGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	g1, g2 := freeAddr(t), freeAddr(t)
	r1, r2 := freeAddr(t), freeAddr(t)
	startProc(t, filepath.Join(tmp, "n1.log"), "gossiping on", "node", "--name", "n1", "--data", filepath.Join(tmp, "d1"),
		"--listen", r1, "--gossip", g1, "--gossip-key", key, "--gossip-fast")
	startProc(t, filepath.Join(tmp, "n2.log"), "gossiping on", "node", "--name", "n2", "--data", filepath.Join(tmp, "d2"),
		"--listen", r2, "--gossip", g2, "--join", g1, "--gossip-key", key, "--gossip-fast")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st messages.Status
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := runShoal(t, ctx, nil, "status", "--node", r1, "--json")
		if err == nil && unmarshalStatus([]byte(out), &st) == nil && len(st.Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 never listed two members; last status %+v (err %v)", st.Members, err)
		}
	}
	if st.Members[1].Name != "n2" || st.Members[1].Remote != r2 {
		t.Fatalf("n2 as seen by n1: %+v", st.Members[1])
	}
	bad := base64.StdEncoding.EncodeToString([]byte("ffffffffffffffffffffffffffffffff"))
	_, err := runShoal(t, ctx, nil, "node", "--name", "n3", "--data", filepath.Join(tmp, "d3"), "--listen", freeAddr(t),
		"--gossip", freeAddr(t), "--join", g1, "--gossip-key", bad, "--gossip-fast")
	if err == nil || !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("a node with the wrong key started: %v", err)
	}
}
