package executor

import (
	"os"
	"strconv"
	"syscall"
)

// DiskUse is the fraction of path's file system in use (0 if unreadable).
func DiskUse(path string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks)
}

// ProcessCount counts the processes in /proc (0 if unreadable).
func ProcessCount() int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			n++
		}
	}
	return n
}
