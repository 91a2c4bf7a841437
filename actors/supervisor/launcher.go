package supervisor

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
)

// Launcher starts executor processes for the node (shoal node --executors).
type Launcher interface {
	Start(id string) (Process, error)
}

// Process is a started executor process.
type Process interface {
	// Wait blocks until the process exits and returns why.
	Wait() error
	// Kill ends it at once (SIGKILL); Terminate asks it to stop (SIGTERM).
	Kill()
	Terminate()
	Pid() int
}

// Command launches Path with Args(id); its output goes to Stdout and
// Stderr (nil: discarded). On Linux a launched process is killed when the
// node dies (Pdeathsig), so none outlives a crashed node.
type Command struct {
	Path           string
	Args           func(id string) []string
	Env            []string // nil: the node's environment
	Stdout, Stderr io.Writer
}

func (c Command) Start(id string) (Process, error) {
	cmd := exec.Command(c.Path, c.Args(id)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.Env, c.Stdout, c.Stderr
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch executor %s: %w", id, err)
	}
	return osProcess{cmd}, nil
}

type osProcess struct{ cmd *exec.Cmd }

func (p osProcess) Wait() error { return p.cmd.Wait() }
func (p osProcess) Kill()       { _ = p.cmd.Process.Kill() }
func (p osProcess) Terminate()  { _ = p.cmd.Process.Signal(syscall.SIGTERM) }
func (p osProcess) Pid() int    { return p.cmd.Process.Pid }
