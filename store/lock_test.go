package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestPebbleLockedNamesTheLock: a store directory already open is
// ErrLocked naming the directory and its lock file (it was a bare "lock
// held by current process", or from another process "resource temporarily
// unavailable").
func TestPebbleLockedNamesTheLock(t *testing.T) {
	dir := t.TempDir()
	openAt(t, PebbleConfig{Dir: dir, PebbleOptions: DefaultPebbleOptions()})
	_, err := OpenPebble(PebbleConfig{Dir: dir, PebbleOptions: DefaultPebbleOptions()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "store "+dir+" is in use") || !strings.Contains(err.Error(), "(lock file "+filepath.Join(dir, "LOCK")+")") {
		t.Fatalf("second open: %v", err)
	}
}
