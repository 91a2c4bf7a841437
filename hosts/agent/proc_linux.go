package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// ownGroup puts the command in its own process group, kills the whole group
// when its context ends, and has the kernel kill the shell if the agent
// dies (SIGKILL included), so a dead agent leaves no command finishing
// behind its back.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// diskUse is the fraction of path's file system in use.
func diskUse(path string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks)
}

// processCount counts the processes in /proc.
func processCount() int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(filepath.Base(e.Name())); err == nil && e.IsDir() {
			n++
		}
	}
	return n
}
