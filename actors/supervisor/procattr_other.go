//go:build !linux

package supervisor

import "syscall"

// procAttr: outside Linux a launched executor may outlive a crashed node.
func procAttr() *syscall.SysProcAttr { return nil }
