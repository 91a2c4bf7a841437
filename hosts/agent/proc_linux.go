package agent

import (
	"os/exec"
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
