package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// pidCPU is the CPU time, user and system, of a running process of this
// machine (/proc/<pid>/stat, in USER_HZ = 100 ticks: 10 ms resolution).
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// cpuPerTask records the CPU spent between two readings of the whole system
// under test (this process, and the node processes of a cluster run) per
// task, in µs: on a saturated machine the figure that sets the rate, and
// the one least disturbed by other processes.
func cpuPerTask(res *Result, from, to time.Duration, tasks int64) {
	if to > from && tasks > 0 {
		res.Metrics["cpu_us_per_task"] = round(float64(to-from)/float64(time.Microsecond)/float64(tasks), 2)
	}
}
