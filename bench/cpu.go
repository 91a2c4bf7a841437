package bench

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's CPU time (Linux RUSAGE_THREAD).
func threadCPU() (time.Duration, bool) {
	const rusageThread = 1
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// processCPU is the process's CPU time, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processTreeCPU is processCPU plus the CPU of reaped child processes
// (W7's peers).
func processTreeCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return processCPU()
	}
	return processCPU() + time.Duration(ru.Utime.Nano()+ru.Stime.Nano())
}
