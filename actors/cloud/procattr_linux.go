package cloud

import "syscall"

// childAttr makes a worker process get SIGTERM when the node dies, so a
// crashed node leaves no cloud workers behind.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
