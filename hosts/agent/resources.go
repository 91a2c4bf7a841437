package agent

import (
	"github.com/shoalrt/shoal/hosts/table"
	"github.com/shoalrt/shoal/sdk/executor"
)

// resources samples the host for the node-status table: CPU and memory
// from the executor's /proc sampler (the same numbers native workers
// report), disk use of one file system, the process count and the first
// non-loopback address. Off Linux, what cannot be read is 0.
type resources struct {
	load *executor.LoadSampler
	disk string
}

func newResources(disk string) *resources {
	return &resources{load: executor.NewLoadSampler("/proc"), disk: disk}
}

// sample is called from one goroutine (the report loop).
func (r *resources) sample() table.HostStatus {
	var s table.HostStatus
	if l, err := r.load.Sample(); err == nil {
		s.CPU, s.Mem = l.CPU, l.Mem
	}
	s.Disk, s.Procs, s.IP = executor.DiskUse(r.disk), executor.ProcessCount(), executor.FirstIP()
	return s
}
