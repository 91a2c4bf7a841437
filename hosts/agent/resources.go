package agent

import (
	"net"

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
	s.Disk, s.Procs, s.IP = diskUse(r.disk), processCount(), firstIP()
	return s
}

func firstIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	return v6
}
