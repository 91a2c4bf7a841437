//go:build !linux

package agent

import "os/exec"

// ownGroup: outside Linux the command is killed alone on cancel.
func ownGroup(*exec.Cmd) {}
