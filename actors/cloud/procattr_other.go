//go:build !linux

package cloud

import "syscall"

// childAttr: outside Linux a worker outlives a crashed node (no Pdeathsig).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
