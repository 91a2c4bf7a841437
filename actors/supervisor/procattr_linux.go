package supervisor

import "syscall"

// procAttr kills a launched executor when the node dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
