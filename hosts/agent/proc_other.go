//go:build !linux

package agent

import "os/exec"

// ownGroup: outside Linux the command is killed alone on cancel.
func ownGroup(*exec.Cmd) {}

func diskUse(string) float64 { return 0 }

func processCount() int { return 0 }
